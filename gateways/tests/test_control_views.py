"""Start/Stop/Restart buttons, the polling row and the live panel, tried by every role."""

import pytest

from conftest import ROLES
from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway
from gateways.tests.process_helpers import free_port, wait_state
from processes import control

pytestmark = [pytest.mark.worker]


@pytest.mark.parametrize("role", ROLES)
def test_who_may_start_and_stop(gateway_processes, role_client, role):
    gateway = make_gateway(port=free_port())
    client = role_client(role)
    response = client.post(f"/gateways/{gateway.name}/start/", headers={"HX-Request": "true"})
    if role == "anonymous":
        assert response.status_code == 401
    elif role == "viewer":
        assert response.status_code == 403
    else:
        assert response.status_code == 200
        assert "Starting" in response.content.decode() or "Running" in response.content.decode()
        gateway = wait_state(gateway, {"running"})
        response = client.post(f"/gateways/{gateway.name}/stop/")
        assert response.status_code == 302
        wait_state(gateway, {"stopped"})
    gateway.refresh_from_db()
    if role in ("anonymous", "viewer"):
        assert gateway.state == "stopped" and not gateway.intent


@pytest.mark.parametrize("role", ROLES[1:])
def test_every_role_reads_the_row_and_the_live_panel(gateway_processes, role_client, role):
    gateway = make_gateway(port=free_port())
    client = role_client(role)
    row = client.get(f"/gateways/{gateway.name}/row/")
    assert row.status_code == 286  # settled: htmx stops polling
    assert "Stopped" in row.content.decode()
    live = client.get(f"/gateways/{gateway.name}/live/")
    assert live.status_code == 200 and "No process is running." in live.content.decode()
    html = row.content.decode()
    assert ("Start</button>" in html) == (role != "viewer")


def test_the_row_polls_while_starting_and_stops_polling_when_running(gateway_processes, operator, client):
    client.force_login(operator)
    gateway = make_gateway(port=free_port())
    html = client.post(f"/gateways/{gateway.name}/start/", headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 400ms"' in html
    wait_state(gateway, {"running"})
    row = client.get(f"/gateways/{gateway.name}/row/?announce=1")
    assert row.status_code == 286
    body = row.content.decode()
    assert "hx-trigger" not in body.split("</tr>")[0].split(">")[0]
    assert "is running" in body and 'hx-swap-oob="true"' in body and "ready in" in body


def test_the_detail_page_shows_startup_details_figures_and_log(gateway_processes, operator, client):
    client.force_login(operator)
    gateway = make_gateway(port=free_port())
    control.request(gateway, "start", operator)
    gateway = wait_state(gateway, {"running"})
    from conftest import wait_until

    # Figures are sampled once a second by the worker; the chart needs two samples.
    wait_until(lambda: "<polyline" in client.get(f"/gateways/{gateway.name}/live/").content.decode(),
               timeout=10, interval=0.3)
    # (The command carries <wbr> at its separators: portal.templatetags.layout.breakable.)
    html = client.get(f"/gateways/{gateway.name}/").content.decode().replace("<wbr>", "")
    assert "-m gateways.server --host 127.0.0.1 --port" in html
    assert "Ready in" in html and f"<dd>{gateway.pid}</dd>" in html
    assert "Open connections" in html and "CPU, last" in html and "Memory, last" in html
    assert f"listening on 127.0.0.1:{gateway.port}" in html  # the log tail


def test_a_running_gateway_cannot_be_edited_or_deleted(gateway_processes, administrator, admin_client_):
    gateway = make_gateway(port=free_port())
    control.request(gateway, "start", administrator)
    gateway = wait_state(gateway, {"running"})
    response = admin_client_.post(f"/gateways/{gateway.name}/edit/", form_data(port=str(free_port())))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"stop {gateway.name} first, then change port" in html
    assert Gateway.objects.get(pk=gateway.pk).port == gateway.port

    response = admin_client_.post(f"/gateways/{gateway.name}/delete/", follow=True)
    assert f"stop {gateway.name} first, then delete it" in response.content.decode()
    assert Gateway.objects.filter(pk=gateway.pk).exists()

    control.request(gateway, "stop", administrator)
    wait_state(gateway, {"stopped"})
    assert admin_client_.post(f"/gateways/{gateway.name}/delete/").status_code == 302
    assert not Gateway.objects.filter(pk=gateway.pk).exists()


def test_an_unknown_action_is_a_404(admin_client_):
    make_gateway()
    assert admin_client_.post("/gateways/PyGate/explode/").status_code == 404


@pytest.mark.django_db
def test_a_start_without_a_broker_says_so_and_records_no_intent(admin_client_, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    gateway = make_gateway()
    response = admin_client_.post(f"/gateways/{gateway.name}/start/", follow=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert "The start of PyGate was not sent: the task broker does not answer" in html
    assert "make run" in html
    gateway.refresh_from_db()
    assert gateway.intent == "" and gateway.state == "stopped"
    assert gateway.requested == ""  # a request that was not sent is not shown as pending
    htmx = admin_client_.post(f"/gateways/{gateway.name}/start/", headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and "was not sent" in htmx.content.decode()
