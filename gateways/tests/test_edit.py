import pytest

from conftest import ROLES
from gateways.forms import GatewayForm
from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role,status", [("viewer", 403), ("operator", 403), ("administrator", 200)])
def test_only_an_administrator_opens_the_edit_form(role_client, role, status):
    make_gateway()
    assert role_client(role).get("/gateways/PyGate/edit/").status_code == status


@pytest.mark.parametrize("role", ROLES[:3])
def test_nobody_but_an_administrator_can_edit(role_client, role):
    make_gateway()
    role_client(role).post("/gateways/PyGate/edit/", form_data(port="55002"))
    assert Gateway.objects.get().port == 55001


def test_the_name_is_shown_read_only_and_cannot_change(admin_client_):
    make_gateway()
    html = admin_client_.get("/gateways/PyGate/edit/").content.decode()
    assert "readonly" in html and "cannot be changed once saved." in html
    # Said once, not twice (the help text already says it).
    assert html.count("cannot be changed") == 1
    response = admin_client_.post("/gateways/PyGate/edit/", form_data(name="Renamed", port="55002"))
    assert response.status_code == 302
    gateway = Gateway.objects.get()
    assert gateway.name == "PyGate" and gateway.port == 55002


def test_an_edit_is_recorded_with_before_and_after(admin_client_):
    make_gateway()
    admin_client_.post("/gateways/PyGate/edit/", form_data(port="55002", python_options="-X dev"))
    entry = AuditEntry.objects.get(action="changed")
    assert entry.changes["port"] == {"before": 55001, "after": 55002}
    assert entry.changes["python_options"] == {"before": "", "after": "-X dev"}
    html = admin_client_.get("/gateways/PyGate/").content.decode()
    assert "55001" in html and "55002" in html and "ada" in html


def test_saving_without_changes_records_nothing(admin_client_):
    import sys

    make_gateway(python_executable=sys.executable)
    admin_client_.post("/gateways/PyGate/edit/", form_data(python_executable=sys.executable))
    assert not AuditEntry.objects.filter(action="changed").exists()


def test_a_blank_passphrase_keeps_the_current_one(admin_client_):
    admin_client_.post("/gateways/new/", form_data(use_passphrase="on", passphrase="first-passphrase"))
    verifier = Gateway.objects.get().passphrase_verifier
    html = admin_client_.get("/gateways/PyGate/edit/").content.decode()
    assert "Leave blank to keep the current one" in html
    assert verifier not in html
    admin_client_.post("/gateways/PyGate/edit/", form_data(use_passphrase="on", passphrase=""))
    assert Gateway.objects.get().passphrase_verifier == verifier


def test_a_new_passphrase_is_recorded_only_as_changed(admin_client_):
    admin_client_.post("/gateways/new/", form_data(use_passphrase="on", passphrase="first-passphrase"))
    admin_client_.post("/gateways/PyGate/edit/", form_data(use_passphrase="on", passphrase="second-passphrase"))
    entry = AuditEntry.objects.get(action="changed")
    assert entry.changes == {"passphrase_verifier": {"secret": True}}
    html = admin_client_.get("/gateways/PyGate/").content.decode()
    assert "Passphrase</span>: changed" in html
    assert "second-passphrase" not in html and "pbkdf2" not in html


def test_editing_keeps_its_own_port_without_a_clash(admin_client_):
    make_gateway()
    form = GatewayForm(form_data(), instance=Gateway.objects.get())
    assert form.is_valid(), form.errors


def test_an_unknown_gateway_is_a_404(admin_client_):
    assert admin_client_.get("/gateways/Nope/edit/").status_code == 404
