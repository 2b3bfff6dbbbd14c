"""The history of a definition and the dashboard's latest changes, as a user reads them: fields by
their form labels, a creation without its empty and default values, and a secret only as set or not."""

from __future__ import annotations

import pytest

from gateways.tests.factories import form_data
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


def history_of_page(html: str) -> str:
    return html[html.index('id="history"'):]


def test_a_gateway_without_passphrase_does_not_claim_one(admin_client_):
    assert admin_client_.post("/gateways/new/", form_data()).status_code == 302
    assert "passphrase_verifier" not in AuditEntry.objects.get().changes
    history = history_of_page(admin_client_.get("/gateways/PyGate/").content.decode())
    assert "set (secret)" not in history and "Passphrase" not in history
    dashboard = admin_client_.get("/").content.decode()
    assert "secret" not in dashboard.split("Latest changes")[1]


def test_a_gateway_with_a_passphrase_says_set_and_never_the_value(admin_client_):
    admin_client_.post("/gateways/new/", form_data(use_passphrase="on", passphrase="s3cret-pass-phrase"))
    history = history_of_page(admin_client_.get("/gateways/PyGate/").content.decode())
    assert '<span class="field">Passphrase</span>: set (secret)' in history
    assert "s3cret" not in history and "pbkdf2" not in history


def test_removing_the_passphrase_says_removed(admin_client_):
    admin_client_.post("/gateways/new/", form_data(use_passphrase="on", passphrase="s3cret-pass-phrase"))
    assert admin_client_.post("/gateways/PyGate/edit/", form_data()).status_code == 302
    history = history_of_page(admin_client_.get("/gateways/PyGate/").content.decode())
    assert '<span class="field">Passphrase</span>: removed' in history


def test_a_creation_lists_fields_by_label_without_empty_or_default_values(admin_client_):
    admin_client_.post("/gateways/new/", form_data(python_options="-X dev"))
    history = history_of_page(admin_client_.get("/gateways/PyGate/").content.decode())
    assert '<span class="field">Server name / IP address</span>: 127.0.0.1' in history
    assert '<span class="field">Port</span>: 55001' in history
    assert '<span class="field">Python options</span>: -X dev' in history
    for left_out in ("allow_unauthenticated_network", "Allow connections", "Log file", "Type</span>", "False"):
        assert left_out not in history


def test_a_change_lists_fields_by_label(admin_client_):
    admin_client_.post("/gateways/new/", form_data())
    admin_client_.post("/gateways/PyGate/edit/", form_data(port="25002"))
    history = history_of_page(admin_client_.get("/gateways/PyGate/").content.decode())
    assert '<span class="field">Port</span>: <del>55001</del> → <ins>25002</ins>' in history


def test_a_cleared_field_shows_a_dash(admin_client_):
    admin_client_.post("/gateways/new/", form_data(python_options="-X dev"))
    admin_client_.post("/gateways/PyGate/edit/", form_data())
    history = history_of_page(admin_client_.get("/gateways/PyGate/").content.decode())
    assert '<span class="field">Python options</span>: <del>-X dev</del> → <ins>—</ins>' in history


def test_the_dashboard_shows_the_last_five_changes_on_one_line_each(admin_client_):
    for number in range(7):
        admin_client_.post("/gateways/new/", form_data(name=f"G{number}", port=str(25001 + number)))
    admin_client_.post("/gateways/G6/edit/", form_data(name="G6", port="25100", python_options="-X dev"))
    html = admin_client_.get("/").content.decode()
    latest = html[html.index("Latest changes"):]
    assert latest.count("<li>") == 5
    assert ('changed gateway <a href="/gateways/G6/#history"><strong>G6</strong></a>: '
            '<span class="muted">Port, Python options</span>') in latest
    assert ('created gateway <a href="/gateways/G5/#history"><strong>G5</strong></a>: '
            '<span class="muted">127.0.0.1, 25006</span>') in latest
    assert "G1<" not in latest
    assert 'href="/admin/portal/auditentry/"' in latest  # the whole history, for an Administrator


def test_a_deleted_definition_is_named_without_a_link(admin_client_):
    admin_client_.post("/gateways/new/", form_data())
    admin_client_.post("/gateways/PyGate/delete/")
    latest = admin_client_.get("/").content.decode().split("Latest changes")[1]
    assert "deleted gateway <strong>PyGate</strong>" in latest
