"""Beyond loopback a gateway needs a passphrase, unless an administrator explicitly allows it.

Without a passphrase, anyone who can reach the port runs code as the portal's
user: refused by default in the form and again before each start; when an
administrator allows it, it is in the definition's history, marked on the
list and detail pages, and each start says so in the activity.
"""

from __future__ import annotations

import pytest

from gateways.forms import GatewayForm
from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway
from gateways.tests.process_helpers import server_processes, start_and_wait
from portal.models import AuditEntry
from portal.process.checks import is_loopback
from processes import tasks
from processes.models import Activity

pytestmark = pytest.mark.django_db

BADGE = "open to the network without a passphrase"


def errors_for(**overrides: str) -> dict[str, str]:
    form = GatewayForm(form_data(**overrides))
    form.is_valid()
    return {field: " ".join(errors) for field, errors in form.errors.items()}


@pytest.mark.parametrize("server", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.20", "gw1.example.com", "fe80::1"])
def test_a_server_beyond_loopback_without_a_passphrase_is_refused(server):
    message = errors_for(server=server)["use_passphrase"]
    assert "no passphrase is set: anyone who can reach the port could run code as its user" in message
    assert "Tick “Use passphrase”, or listen on 127.0.0.1" in message


@pytest.mark.parametrize("server", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_passphrase(server):
    assert is_loopback(server)
    assert errors_for(server=server) == {}


def test_a_passphrase_makes_any_address_acceptable():
    assert errors_for(server="0.0.0.0", use_passphrase="on", passphrase="long enough phrase") == {}


def test_an_administrator_may_allow_it_and_is_warned():
    form = GatewayForm(form_data(server="0.0.0.0", allow_unauthenticated_network="on"))
    assert form.is_valid(), form.errors
    assert any("accepts connections from the network without a passphrase" in w for w in form.warnings)


def test_the_edit_form_shows_the_choice_and_keeps_it(admin_client_):
    make_gateway(server="0.0.0.0", allow_unauthenticated_network=True)
    html = admin_client_.get("/gateways/PyGate/edit/").content.decode()
    assert 'name="allow_unauthenticated_network"' in html and "checked" in html
    assert "Allow connections from the network without a passphrase" in html


def test_allowing_it_is_recorded_in_the_history(admin_client_):
    admin_client_.post("/gateways/new/", form_data())
    response = admin_client_.post("/gateways/PyGate/edit/",
                                  form_data(server="0.0.0.0", allow_unauthenticated_network="on"))
    assert response.status_code == 302
    entry = AuditEntry.objects.filter(action="changed").get()
    assert entry.changes["allow_unauthenticated_network"] == {"before": False, "after": True}
    assert entry.changes["server"] == {"before": "127.0.0.1", "after": "0.0.0.0"}
    assert entry.actor_name == "ada"


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_administrator_can_allow_it(role_client, role):
    gateway = make_gateway()
    client = role_client(role)
    response = client.post(f"/gateways/{gateway.name}/edit/",
                           form_data(server="0.0.0.0", allow_unauthenticated_network="on"))
    assert response.status_code == 403
    gateway.refresh_from_db()
    assert (gateway.server, gateway.allow_unauthenticated_network) == ("127.0.0.1", False)


def test_the_list_and_the_detail_page_mark_an_open_gateway(role_client):
    make_gateway(name="Open", server="0.0.0.0", port=55010, allow_unauthenticated_network=True)
    make_gateway(name="Local", port=55011)
    make_gateway(name="Guarded", server="0.0.0.0", port=55012, use_passphrase=True, passphrase_verifier="x")
    viewer = role_client("viewer")
    listing = viewer.get("/gateways/").content.decode()
    assert listing.count(BADGE) == 1
    assert listing.index(BADGE) > listing.index(">Open</a>")  # rows by name: Guarded, Local, Open
    assert BADGE in viewer.get("/gateways/Open/").content.decode()
    assert BADGE not in viewer.get("/gateways/Local/").content.decode()
    assert BADGE not in viewer.get("/gateways/Guarded/").content.decode()


def test_an_older_open_definition_is_refused_before_start():
    gateway = make_gateway(server="0.0.0.0")  # saved before the rule, straight into the table
    failure = tasks.preflight(gateway)
    assert failure is not None and failure.code == "open-to-network"


def test_an_open_definition_never_starts_unless_allowed(pygate, operator):
    Gateway.objects.filter(pk=pygate.pk).update(server="0.0.0.0")
    gateway = start_and_wait(pygate, operator)
    assert gateway.state == "stopped"
    assert gateway.last_error.startswith("Start refused: 0.0.0.0 listens on every address of the host and no "
                                         "passphrase is set")
    assert server_processes(gateway.port) == []


def test_an_allowed_open_gateway_starts_with_a_warning_in_its_activity(pygate, operator):
    Gateway.objects.filter(pk=pygate.pk).update(server="0.0.0.0", allow_unauthenticated_network=True)
    gateway = start_and_wait(pygate, operator)
    assert gateway.state == "running", gateway.last_error
    warning = Activity.objects.of(gateway).filter(level="warning").get()
    assert f"PyGate starts on 0.0.0.0:{gateway.port} without a passphrase, open to the network" in warning.message
    assert warning.trigger == operator.username


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [390, 1920])
def test_the_badge_is_seen_on_a_phone_and_a_wide_screen(browser, live_server, viewer, width):
    from conftest import PASSWORD

    make_gateway(name="Open", server="0.0.0.0", allow_unauthenticated_network=True)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", viewer.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        for url in ("/gateways/", "/gateways/Open/"):
            page.goto(f"{live_server.url}{url}")
            badge = page.locator(".exposed").first
            assert badge.is_visible() and badge.inner_text() == BADGE
        # On the detail page it wraps inside the screen instead of pushing the page sideways.
        box = page.locator("h1 .exposed").bounding_box()
        assert box is not None and box["x"] + box["width"] <= width
    finally:
        context.close()
