"""The JSON API: every endpoint by every role, with a session and with a token."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Callable

import psutil
import pytest
from django.test import Client
from django.utils import timezone

from conftest import ROLES, wait_until
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import gone
from portal import tokens
from portal.models import ApiToken
from portal.roles import ADMINISTRATOR, OPERATOR, VIEWER
from processes import control
from processes.models import Activity

NOT_AUTHENTICATED = "Log in, or send Authorization: Bearer <token> (create one on your profile page)."
GROUPS = {"viewer": VIEWER, "operator": OPERATOR, "administrator": ADMINISTRATOR}
AUTHS = ["session", "token"]
# A gateway on another host: its tasks go to a queue no test worker serves, so a
# request is recorded and sent without any process being started.
REMOTE = "192.0.2.10"  # TEST-NET-1: a valid address of no host here
VERIFIER = "pbkdf2_sha256$1000$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"

ApiClient = Callable[[str, str], Client]


@pytest.fixture
def api(make_user) -> ApiClient:  # type: ignore[no-untyped-def]
    """api(role, auth): a client for that role, logged in by session or sending a token."""

    def client_for(role: str, auth: str = "session") -> Client:
        if role == "anonymous":
            return Client()
        user = make_user(f"{auth}-{role}", GROUPS[role])
        if auth == "session":
            client = Client()
            client.force_login(user)
            return client
        _row, token = tokens.create(user, "tests")
        return Client(headers={"Authorization": f"Bearer {token}"})

    return client_for


def body(response) -> dict:  # type: ignore[no-untyped-def]
    assert response["Content-Type"] == "application/json", response.content[:200]
    return json.loads(response.content)


def remote_gateway(**fields: object) -> Gateway:
    return make_gateway(server=REMOTE, **fields)


# Reading ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/gateways/", "/api/gateways/PyGate/", "/api/gateways/PyGate/start"])
def test_anonymous_is_told_how_to_authenticate(client, url):
    make_gateway()
    response = client.post(url) if url.endswith("start") else client.get(url)
    assert response.status_code == 401
    assert body(response) == {"error": NOT_AUTHENTICATED}
    assert response["WWW-Authenticate"] == "Bearer"
    assert Gateway.objects.get().intent == ""


@pytest.mark.django_db
@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize("role", ROLES[1:])
def test_every_role_lists_gateways_with_state_and_type(api, role, auth):
    make_gateway(name="PyGate", port=55001)
    make_gateway(name="Other", port=55002, state="fatal", last_error="it died")
    response = api(role, auth).get("/api/gateways/")
    assert response.status_code == 200
    gateways = body(response)["gateways"]
    assert [g["name"] for g in gateways] == ["Other", "PyGate"]
    assert gateways[0]["state"] == "fatal" and gateways[0]["last_error"] == "it died"
    assert gateways[1] == control.status_of(Gateway.objects.get(name="PyGate")) | {"type": "python"}


@pytest.mark.django_db
@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize("role", ROLES[1:])
def test_every_role_reads_one_gateway(api, role, auth):
    make_gateway(port=55007)
    response = api(role, auth).get("/api/gateways/PyGate/")
    assert response.status_code == 200
    data = body(response)
    assert data["name"] == "PyGate" and data["port"] == 55007 and data["state"] == "stopped"
    assert data["type"] == "python" and data["pid"] is None and data["in_transition"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("auth", AUTHS)
def test_an_unknown_gateway_is_a_json_404(api, auth):
    response = api("viewer", auth).get("/api/gateways/Nope/")
    assert response.status_code == 404
    assert body(response) == {"error": "There is no gateway named Nope"}


@pytest.mark.django_db
def test_the_name_is_matched_regardless_of_case(api):
    make_gateway()
    assert body(api("viewer").get("/api/gateways/pygate/"))["name"] == "PyGate"


@pytest.mark.django_db
@pytest.mark.parametrize("auth", AUTHS)
def test_a_user_without_a_role_is_refused_with_json_403(make_user, auth):
    user = make_user("nobody", None)
    if auth == "session":
        client = Client()
        client.force_login(user)
    else:
        client = Client(headers={"Authorization": f"Bearer {tokens.create(user, 'x')[1]}"})
    response = client.get("/api/gateways/")
    assert response.status_code == 403
    assert body(response) == {"error": "Your account has no role: ask an administrator."}


@pytest.mark.django_db
def test_the_passphrase_verifier_never_appears_in_any_answer(api, redis_service):
    remote_gateway(use_passphrase=True, passphrase_verifier=VERIFIER)
    client = api("administrator", "token")
    answers = [
        client.get("/api/gateways/"),
        client.get("/api/gateways/PyGate/"),
        client.post("/api/gateways/PyGate/start"),
        client.post("/api/gateways/PyGate/stop"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 202, 202]
    for answer in answers:
        text = answer.content.decode()
        assert "verifier" not in text and "pbkdf2" not in text and VERIFIER.split("$")[-1] not in text


# Start, stop, restart -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("action", control.ACTIONS)
@pytest.mark.parametrize("auth", AUTHS)
def test_a_viewer_cannot_start_stop_or_restart(api, auth, action):
    remote_gateway()
    response = api("viewer", auth).post(f"/api/gateways/PyGate/{action}")
    assert response.status_code == 403
    assert "Only an Operator or an Administrator may start and stop gateways" in body(response)["error"]
    assert Gateway.objects.get().intent == ""
    assert not Activity.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("action", control.ACTIONS)
@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize("role", ["operator", "administrator"])
def test_operators_and_administrators_request_start_stop_and_restart(api, redis_service, role, auth, action):
    remote_gateway()
    response = api(role, auth).post(f"/api/gateways/PyGate/{action}")
    assert response.status_code == 202
    data = body(response)
    assert data["name"] == "PyGate" and data["host"] == REMOTE and data["in_transition"] is True
    gateway = Gateway.objects.get()
    assert gateway.intent == ("stop" if action == "stop" else "start")
    request = Activity.objects.of(gateway).get()
    assert request.trigger == f"api:{auth}-{role}"
    assert request.message == f"{action.capitalize()} requested"


@pytest.mark.django_db
def test_an_action_on_an_unknown_gateway_is_a_json_404(api):
    response = api("operator", "token").post("/api/gateways/Nope/start")
    assert response.status_code == 404
    assert body(response) == {"error": "There is no gateway named Nope"}


@pytest.mark.django_db
def test_a_trailing_slash_after_the_action_is_accepted(api, redis_service):
    remote_gateway()
    assert api("operator", "token").post("/api/gateways/PyGate/start/").status_code == 202


@pytest.mark.django_db
def test_a_wait_value_that_is_not_a_yes_or_no_is_a_400(api):
    remote_gateway()
    response = api("operator", "token").post("/api/gateways/PyGate/start?wait=soon")
    assert response.status_code == 400
    assert "wait=soon is not understood: use wait=1" in body(response)["error"]
    assert Gateway.objects.get().intent == ""


@pytest.mark.django_db
def test_get_on_an_action_is_a_json_405(api):
    remote_gateway()
    response = api("operator", "token").get("/api/gateways/PyGate/start")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert body(response) == {"error": "GET is not allowed here: use POST."}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/", "/api/gateways/PyGate/explode", "/api/nothing/here/"])
def test_an_unknown_api_path_is_a_json_404(api, url):
    remote_gateway()
    response = api("viewer", "token").get(url)
    assert response.status_code == 404
    assert body(response)["error"].startswith(f"There is no API at {url}")


# Tokens ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_revoked_token_is_refused(viewer):
    row, token = tokens.create(viewer, "script")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    assert client.get("/api/gateways/").status_code == 200
    tokens.revoke(viewer, row.pk)
    response = client.get("/api/gateways/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert "not valid: it was revoked" in body(response)["error"]


@pytest.mark.django_db
def test_an_unknown_token_is_refused():
    client = Client(headers={"Authorization": "Bearer gwp_made-up"})
    response = client.get("/api/gateways/")
    assert response.status_code == 401
    assert "Create a new one on your profile page." in body(response)["error"]


@pytest.mark.django_db
def test_the_token_of_a_disabled_account_is_refused(operator):
    _row, token = tokens.create(operator, "script")
    operator.is_active = False
    operator.save()
    response = Client(headers={"Authorization": f"Bearer {token}"}).get("/api/gateways/")
    assert response.status_code == 401
    assert "whose account is disabled" in body(response)["error"]


@pytest.mark.django_db
def test_a_bad_token_is_refused_even_with_a_valid_session(viewer):
    client = Client(headers={"Authorization": "Bearer gwp_made-up"})
    client.force_login(viewer)
    assert client.get("/api/gateways/").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Basic dmVyYTpwYXNz", "Bearer", "Token gwp_x"])
def test_an_authorization_header_that_is_not_bearer_is_refused(header):
    response = Client(headers={"Authorization": header}).get("/api/gateways/")
    assert response.status_code == 401
    assert body(response)["error"].startswith("The Authorization header must be `Bearer <token>`")


@pytest.mark.django_db
def test_last_used_is_recorded_at_most_once_a_minute(viewer):
    row, token = tokens.create(viewer, "script")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    client.get("/api/gateways/")
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    client.get("/api/gateways/")
    row.refresh_from_db()
    assert row.last_used_at == first
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now() - dt.timedelta(minutes=2))
    client.get("/api/gateways/")
    row.refresh_from_db()
    assert row.last_used_at > timezone.now() - dt.timedelta(minutes=1)


@pytest.mark.django_db
def test_only_the_digest_is_stored(viewer):
    row, token = tokens.create(viewer, "script")
    assert token.startswith("gwp_") and len(token) > 40
    assert row.digest == tokens.digest(token) and token not in row.digest
    assert row.prefix == token[:8]


# CSRF -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_session_post_without_the_csrf_token_is_refused_with_json_403(operator):
    remote_gateway()
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post("/api/gateways/PyGate/start")
    assert response.status_code == 403
    assert body(response)["error"].startswith("CSRF check failed")
    assert "X-CSRFToken header with the portal_csrftoken cookie" in body(response)["error"]
    assert Gateway.objects.get().intent == ""


@pytest.mark.django_db
def test_a_session_post_with_the_csrf_token_is_accepted(operator, redis_service):
    remote_gateway()
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    client.get("/profile/")  # sets the portal_csrftoken cookie, as any page does
    csrf = client.cookies["portal_csrftoken"].value
    response = client.post("/api/gateways/PyGate/start", headers={"X-CSRFToken": csrf})
    assert response.status_code == 202


@pytest.mark.django_db
def test_a_token_post_needs_no_csrf_token(operator, redis_service):
    remote_gateway()
    _row, token = tokens.create(operator, "script")
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {token}"})
    assert client.post("/api/gateways/PyGate/start").status_code == 202


# With the real worker -------------------------------------------------------




def listens(pid: int, port: int) -> bool:
    try:
        connections = psutil.Process(pid).net_connections(kind="inet")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_start_and_stop_with_wait_give_the_settled_state_of_a_real_server(api, pygate):
    client = api("operator", "token")
    response = client.post("/api/gateways/PyGate/start?wait=1")
    assert response.status_code == 200, response.content
    started = body(response)
    assert started["state"] == "running", started["last_error"]
    assert started["in_transition"] is False and started["time_to_ready"] is not None
    pid = started["pid"]
    assert psutil.pid_exists(pid) and listens(pid, pygate.port)

    response = client.post("/api/gateways/PyGate/stop?wait=1")
    assert response.status_code == 200, response.content
    stopped = body(response)
    assert stopped["state"] == "stopped" and stopped["pid"] is None
    wait_until(lambda: gone(pid), timeout=5, message=f"pid {pid} is still alive after the stop")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_start_that_is_refused_gives_409_with_the_reason(api, pygate):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", pygate.port))
        taken.listen()
        response = api("operator", "token").post("/api/gateways/PyGate/start?wait=1")
    assert response.status_code == 409
    data = body(response)
    assert data["error"].startswith("The start of PyGate ended stopped: Start refused:")
    assert str(pygate.port) in data["error"]
    assert data["state"] == "stopped" and data["pid"] is None
