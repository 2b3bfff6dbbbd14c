import pytest

from conftest import ROLES
from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role,status", [("viewer", 403), ("operator", 403), ("administrator", 200)])
def test_only_an_administrator_opens_the_create_form(role_client, role, status):
    assert role_client(role).get("/gateways/new/").status_code == status


@pytest.mark.parametrize("role", ROLES[:3])
def test_nobody_but_an_administrator_can_create(role_client, role):
    response = role_client(role).post("/gateways/new/", form_data())
    assert response.status_code in (302, 403)
    if role == "anonymous":
        assert response["Location"].startswith("/login/")
    assert not Gateway.objects.exists()


def test_creating_pygate_puts_it_in_the_list_as_python_stopped(admin_client_):
    response = admin_client_.post("/gateways/new/", form_data(), follow=True)
    assert response.redirect_chain[-1][0] == "/gateways/"
    html = response.content.decode()
    assert "Gateway PyGate was created." in html
    row = html[html.index('id="gateway-'):]
    assert "PyGate" in row and "Python" in row and "Stopped" in row and "55001" in row
    gateway = Gateway.objects.get()
    assert gateway.server == "127.0.0.1"
    assert gateway.init_timeout == 5 and gateway.connection_timeout == 5
    assert gateway.restart_policy == "on-failure"


def test_the_python_executable_defaults_to_the_portals_own(admin_client_):
    import sys

    admin_client_.post("/gateways/new/", form_data())
    # Kept blank, so that an export names no path of this host; resolved at each start.
    gateway = Gateway.objects.get()
    assert gateway.python_executable == "" and gateway.interpreter == sys.executable


def test_creation_records_who_did_it(admin_client_, administrator):
    admin_client_.post("/gateways/new/", form_data())
    gateway = Gateway.objects.get()
    assert gateway.created_by == administrator
    entry = AuditEntry.objects.get()
    assert entry.action == "created" and entry.actor_name == "ada" and entry.object_name == "PyGate"
    assert entry.changes["port"] == {"before": None, "after": 55001}


def test_a_second_definition_on_the_same_port_is_refused_naming_the_first(admin_client_):
    make_gateway()
    response = admin_client_.post("/gateways/new/", form_data(name="Other"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Port 55001 on 127.0.0.1 is already used by gateway PyGate" in html
    assert "The definition was not saved" in html
    assert Gateway.objects.count() == 1


def test_a_refused_form_keeps_what_was_typed(admin_client_):
    response = admin_client_.post("/gateways/new/", form_data(port="70000", python_options="-X dev"))
    html = response.content.decode()
    assert "choose a port from 1 to 65535" in html or "less than or equal to 65535" in html
    assert 'value="70000"' in html and 'value="-X dev"' in html


def test_a_passphrase_is_never_echoed_back(admin_client_):
    response = admin_client_.post(
        "/gateways/new/", form_data(port="bad", use_passphrase="on", passphrase="s3cret-pass-phrase")
    )
    assert response.status_code == 200
    assert "s3cret-pass-phrase" not in response.content.decode()


def test_listening_everywhere_without_a_passphrase_is_refused(admin_client_):
    response = admin_client_.post("/gateways/new/", form_data(server="0.0.0.0"))
    assert response.status_code == 200
    assert not Gateway.objects.exists()
    assert "listens on every address of the host and no passphrase is set" in response.content.decode()


def test_listening_everywhere_when_an_administrator_allows_it_warns(admin_client_):
    data = form_data(server="0.0.0.0", allow_unauthenticated_network="on")
    response = admin_client_.post("/gateways/new/", data, follow=True)
    assert Gateway.objects.get().allow_unauthenticated_network
    assert "accepts connections from the network without a passphrase" in response.content.decode()


def test_the_passphrase_is_stored_only_as_a_verifier(admin_client_):
    admin_client_.post("/gateways/new/", form_data(use_passphrase="on", passphrase="s3cret-pass-phrase"))
    gateway = Gateway.objects.get()
    assert gateway.passphrase_verifier.startswith("pbkdf2_sha256$")
    assert "s3cret-pass-phrase" not in gateway.passphrase_verifier
    entry = AuditEntry.objects.get()
    assert entry.changes["passphrase_verifier"] == {"secret": True}
    assert "s3cret" not in str(entry.changes)
