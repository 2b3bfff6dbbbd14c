"""The Django admin changes gateway definitions only as the pages do.

The same form (validation), the same service functions (role, "stop it first",
history), and nothing of what the keeper reports (state, pid, intent, run data)
is editable. Driven with a real client as a superuser and as a member of the
Administrator role; the running gateway is a real server started by a real worker.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway
from gateways.tests.process_helpers import server_processes, start_and_wait
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


def change_url(gateway: Gateway) -> str:
    return f"/admin/gateways/gateway/{gateway.pk}/change/"


def admin_data(gateway: Gateway, **overrides: Any) -> dict[str, Any]:
    """What the admin's change form posts: the gateway's values, with overrides."""
    data = form_data(
        name=gateway.name, server=gateway.server, port=str(gateway.port),
        python_executable=gateway.python_executable, log_file=gateway.log_file,
    )
    data["_save"] = "Save"
    data.update(overrides)
    return data


@pytest.fixture(params=["superuser", "administrator"])
def admin_site_client(request, administrator, django_user_model) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    if request.param == "superuser":
        client.force_login(django_user_model.objects.create_superuser("root", password="x" * 20))
    else:
        client.force_login(administrator)
    return client


def test_an_allowed_change_writes_the_same_history_entry_as_the_pages(admin_site_client):
    gateway = make_gateway(port=55001)
    response = admin_site_client.post(change_url(gateway), admin_data(gateway, port="55002"))
    assert response.status_code == 302, response.content.decode()[:2000]
    gateway.refresh_from_db()
    assert gateway.port == 55002
    entry = AuditEntry.objects.get(object_id=gateway.pk, action="changed")
    assert entry.changes == {"port": {"before": 55001, "after": 55002}}
    assert entry.actor_name in {"root", "ada"}


def test_the_admin_validates_with_the_pages_form(admin_site_client):
    gateway = make_gateway()
    response = admin_site_client.post(change_url(gateway), admin_data(gateway, log_file="/etc/passwd"))
    assert response.status_code == 200
    assert "log files may be only in" in response.content.decode()
    gateway.refresh_from_db()
    assert gateway.log_file == ""
    response = admin_site_client.post("/admin/gateways/gateway/add/", admin_data(gateway, name="Wide", port="1",
                                                                                 server="0.0.0.0"))
    assert "no passphrase is set" in response.content.decode()
    assert not Gateway.objects.filter(name="Wide").exists()


def test_state_pid_intent_and_run_data_are_not_editable(admin_site_client):
    gateway = make_gateway()
    html = admin_site_client.get(change_url(gateway)).content.decode()
    for field in ("state", "pid", "pid_create_time", "intent", "run_host", "last_error", "startup", "last_seq"):
        assert f'name="{field}"' not in html
    forged = admin_data(gateway, state="running", pid="1", intent="start", run_host="elsewhere",
                        last_error="forged", port="55003")
    assert admin_site_client.post(change_url(gateway), forged).status_code == 302
    gateway.refresh_from_db()
    assert (gateway.state, gateway.pid, gateway.intent, gateway.run_host, gateway.last_error) == (
        "stopped", None, "", "", "")
    assert gateway.port == 55003


def test_there_is_no_bulk_delete_that_skips_the_checks(admin_site_client):
    make_gateway()
    html = admin_site_client.get("/admin/gateways/gateway/").content.decode()
    assert "delete_selected" not in html


def test_a_stopped_gateway_is_deleted_with_its_history_entry(admin_site_client):
    gateway = make_gateway()
    response = admin_site_client.post(f"/admin/gateways/gateway/{gateway.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Gateway.objects.exists()
    assert AuditEntry.objects.filter(object_id=gateway.pk, action="deleted").exists()


def test_a_running_gateway_keeps_its_definition_and_its_server(pygate, operator, administrator):
    client = Client()
    client.force_login(administrator)
    gateway = start_and_wait(pygate, operator)
    assert gateway.state == "running", gateway.last_error
    port = gateway.port

    # With the run fields as they are, as an admin form that edits them would post them.
    run_fields = {"state": "running", "pid": str(gateway.pid), "pid_create_time": str(gateway.pid_create_time),
                  "run_host": gateway.run_host, "startup": "{}", "last_seq": str(gateway.last_seq)}
    response = client.post(change_url(gateway), admin_data(gateway, port=str(port + 1), **run_fields))
    html = response.content.decode()
    assert response.status_code == 200
    assert "PyGate is running: stop PyGate first, then change port." in html

    response = client.post(f"/admin/gateways/gateway/{gateway.pk}/delete/", {"post": "yes"}, follow=True)
    assert "PyGate is running: stop PyGate first, then delete it." in response.content.decode()

    gateway.refresh_from_db()
    assert gateway.port == port and gateway.state == "running"
    assert len(server_processes(port)) == 1
    assert not AuditEntry.objects.filter(object_id=gateway.pk, action__in=["changed", "deleted"]).exists()
