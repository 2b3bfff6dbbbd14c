import pytest

from conftest import ROLES
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ROLES[:3])
def test_nobody_but_an_administrator_can_delete(role_client, role):
    make_gateway()
    response = role_client(role).post("/gateways/PyGate/delete/")
    assert response.status_code in (302, 403)
    assert Gateway.objects.exists()


def test_the_confirmation_names_the_gateway(admin_client_):
    make_gateway()
    html = admin_client_.get("/gateways/PyGate/delete/").content.decode()
    assert "Delete gateway PyGate?" in html
    assert "127.0.0.1:55001" in html


def test_with_htmx_the_confirmation_is_a_dialog_fragment(admin_client_):
    make_gateway()
    response = admin_client_.get("/gateways/PyGate/delete/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "Delete gateway PyGate?" in html
    assert "<html" not in html and "data-close-dialog" in html


def test_deleting_removes_it_and_keeps_its_history(admin_client_):
    make_gateway()
    response = admin_client_.post("/gateways/PyGate/delete/", follow=True)
    assert "Gateway PyGate was deleted." in response.content.decode()
    assert not Gateway.objects.exists()
    entry = AuditEntry.objects.get(action="deleted")
    assert entry.object_name == "PyGate" and entry.actor_name == "ada"
    assert entry.changes["port"] == {"before": 55001, "after": None}


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize("fields", [{"state": "running", "pid": 1}, {"state": "stopped", "intent": "start"}])
def test_a_live_gateway_is_not_offered_for_deletion(admin_client_, htmx, fields):
    make_gateway(**fields)
    headers = {"HX-Request": "true"} if htmx else {}
    html = admin_client_.get("/gateways/PyGate/delete/", headers=headers).content.decode()
    assert "stop PyGate first, then delete it." in html
    # Nothing that would be refused: no Delete button, and Stop instead.
    assert ">Delete PyGate<" not in html and 'action="/gateways/PyGate/delete/"' not in html
    assert 'action="/gateways/PyGate/stop/"' in html and "Stop PyGate" in html
