"""The JSON API's create (POST), change (PATCH) and delete (DELETE) of gateway definitions: the
form's rules, its errors per field, the roles, the history, and "?restart=1" for a running one."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.test_api import GROUPS, REMOTE, VERIFIER, body
from portal import tokens
from portal.models import AuditEntry
from processes.models import Activity

pytestmark = pytest.mark.django_db
NO_BROKER = "redis+socket:///nonexistent/redis.sock"
PASSPHRASE = "a long enough passphrase"


@pytest.fixture
def api(make_user):  # type: ignore[no-untyped-def]
    """api(role, "token"): a client of that role sending a token."""

    def client_for(role: str, auth: str = "token") -> Client:
        user = make_user(f"{auth}-{role}", GROUPS[role])
        return Client(headers={"Authorization": f"Bearer {tokens.create(user, 'tests')[1]}"})

    return client_for


def send(client, method: str, url: str, payload: object):  # type: ignore[no-untyped-def]
    return getattr(client, method)(url, json.dumps(payload), content_type="application/json")


def test_an_administrator_creates_a_gateway_with_the_model_defaults_for_what_it_leaves_out(api):
    response = send(api("administrator", "token"), "post", "/api/gateways/",
                    {"name": "PyGate", "port": 55011, "use_passphrase": True, "passphrase": PASSPHRASE})
    assert response.status_code == 201, response.content
    data = body(response)
    gateway = Gateway.objects.get()
    assert gateway.port == 55011 and gateway.server == "127.0.0.1" and gateway.use_passphrase
    assert gateway.passphrase_verifier and gateway.restart_policy == "on-failure"
    assert data["name"] == "PyGate" and data["state"] == "stopped" and data["message"] == "Gateway PyGate was created."
    assert data["definition"]["port"] == 55011 and data["definition"]["use_passphrase"] is True
    # The passphrase and its key are in no answer.
    assert PASSPHRASE not in response.content.decode() and "passphrase_verifier" not in response.content.decode()
    entry = AuditEntry.objects.get()
    assert entry.action == "created" and entry.actor_name == "api:token-administrator"
    assert entry.changes["passphrase_verifier"] == {"secret": True}


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_administrator_creates_changes_or_deletes(api, role):
    make_gateway(port=55012)
    client = api(role, "token")
    answers = [
        send(client, "post", "/api/gateways/", {"name": "Other", "port": 55013}),
        send(client, "patch", "/api/gateways/PyGate/", {"port": 55014}),
        client.delete("/api/gateways/PyGate/"),
    ]
    for answer in answers:
        assert answer.status_code == 403
        assert body(answer)["error"].startswith("Only an Administrator may ")
    assert list(Gateway.objects.values_list("name", "port")) == [("PyGate", 55012)]
    assert not AuditEntry.objects.exists()


def test_the_forms_rules_answer_per_field_and_nothing_is_created(api):
    make_gateway(port=55015)
    response = send(api("administrator", "token"), "post", "/api/gateways/",
                    {"name": "Other", "port": 55015, "use_passphrase": True, "passphrase": "Zq9!xk"})
    assert response.status_code == 400
    data = body(response)
    assert data["errors"]["port"] == [
        "Port 55015 on 127.0.0.1 is already used by gateway PyGate: choose another port, or change PyGate first."]
    assert data["errors"]["passphrase"] == ["The passphrase is too short: use at least 8 characters."]
    assert data["error"] == "The gateway was not created: correct port, passphrase (see errors)"
    assert "Zq9!xk" not in response.content.decode()
    assert Gateway.objects.count() == 1


def test_unknown_fields_and_wrong_types_are_refused_by_name(api):
    response = send(api("administrator", "token"), "post", "/api/gateways/",
                    {"name": "Other", "port": {"a": "1"}, "colour": "red", "use_passphrase": "yes", "allow_root": 1,
                     "server": ["127.0.0.1"]})
    assert response.status_code == 400
    errors = body(response)["errors"]
    assert set(errors) == {"colour", "use_passphrase", "allow_root", "port", "server"}
    assert errors["port"] == ["Give a string or a number, not an object."]
    assert errors["server"] == ["Give a string or a number, not a list."]
    assert errors["colour"][0].startswith("There is no field 'colour': a gateway has type, name, server, port,")
    assert errors["use_passphrase"] == ["Give true or false, not a string."]
    assert not Gateway.objects.exists()


@pytest.mark.parametrize("raw,content_type,status,start", [
    (b"port=1", "application/x-www-form-urlencoded", 415, "The body must be JSON (Content-Type: application/json)"),
    (b"{port: 1}", "application/json", 400, "The body is not valid JSON (Expecting property name"),
    (b"[1, 2]", "application/json", 400, "The body must be a JSON object of fields, not a list"),
    (b"\xff\xfe", "application/json", 400, "The body is not UTF-8 (byte 0)"),
])
def test_a_body_that_is_not_a_json_object_says_what_to_send(api, raw, content_type, status, start):
    response = api("administrator", "token").post("/api/gateways/", raw, content_type=content_type)
    assert response.status_code == status
    assert body(response)["error"].startswith(start)


def test_a_patch_changes_only_the_fields_it_gives(api):
    make_gateway(port=55017, python_options="-X dev", use_passphrase=True, passphrase_verifier=VERIFIER,
                 allow_no_passphrase=False)
    response = send(api("administrator", "token"), "patch", "/api/gateways/pygate/", {"port": 55018})
    assert response.status_code == 200, response.content
    gateway = Gateway.objects.get()
    assert gateway.port == 55018 and gateway.python_options == "-X dev"
    assert gateway.use_passphrase and gateway.passphrase_verifier == VERIFIER  # kept, as a blank field keeps it
    assert body(response)["definition"]["port"] == 55018
    assert VERIFIER.split("$")[-1] not in response.content.decode()
    entry = AuditEntry.objects.get()
    assert entry.action == "changed" and entry.changes == {"port": {"before": 55017, "after": 55018}}
    assert entry.actor_name == "api:token-administrator"


def test_a_patch_cannot_rename(api):
    make_gateway(port=55019)
    response = send(api("administrator", "token"), "patch", "/api/gateways/PyGate/", {"name": "Renamed"})
    assert response.status_code == 400
    assert body(response)["errors"]["name"] == [
        "The name of a gateway cannot change once it is saved: create a new one with the new value and delete this one."]
    assert Gateway.objects.get().name == "PyGate"


def test_a_running_gateways_runtime_field_needs_restart_1(api):
    make_gateway(server=REMOTE, port=55020, state="running", pid=4242, allow_unauthenticated_network=True)
    response = send(api("administrator", "token"), "patch", "/api/gateways/PyGate/", {"port": 55021})
    assert response.status_code == 409, response.content
    error = body(response)["error"]
    assert error.startswith("Nothing was saved: PyGate is running: stop PyGate first, then change port.")
    assert error.endswith("Or send the change with ?restart=1: it is saved and PyGate restarted with it.")
    assert Gateway.objects.get().port == 55020


def test_restart_1_saves_and_requests_the_restart(api, redis_service):
    make_gateway(server=REMOTE, port=55022, state="running", pid=4242, allow_unauthenticated_network=True)
    response = send(api("administrator", "token"), "patch", "/api/gateways/PyGate/?restart=1", {"port": 55023})
    assert response.status_code == 200, response.content
    data = body(response)
    assert data["restart"] == {"requested": True}
    assert data["requested"] == "restart" and data["in_transition"] is True
    gateway = Gateway.objects.get()
    assert gateway.port == 55023 and gateway.intent == "start" and gateway.requested == "restart"
    request = Activity.objects.of(gateway).get()
    assert request.message == "Restart requested" and request.trigger == "api:token-administrator"
    assert AuditEntry.objects.get().changes == {"port": {"before": 55022, "after": 55023}}


def test_restart_1_cannot_move_a_running_gateway_to_another_host(api, redis_service):
    make_gateway(port=55033, state="running", pid=4242, run_host="portal-test-host")
    response = send(api("administrator", "token"), "patch", "/api/gateways/PyGate/?restart=1",
                    {"server": REMOTE, "allow_unauthenticated_network": True})
    assert response.status_code == 409
    assert body(response)["error"] == (
        f"Nothing was saved: PyGate runs on host portal-test-host, and the change moves it to host {REMOTE}: a "
        "restart cannot move it. Stop PyGate, save the change, then start it.")
    gateway = Gateway.objects.get()
    assert gateway.server == "127.0.0.1" and gateway.intent == "" and not Activity.objects.exists()


@override_settings(REDIS_URL=NO_BROKER)
def test_a_restart_that_cannot_be_sent_leaves_the_change_saved_and_says_so(api):
    make_gateway(server=REMOTE, port=55024, state="running", pid=4242, allow_unauthenticated_network=True)
    response = send(api("administrator", "token"), "patch", "/api/gateways/PyGate/?restart=1", {"port": 55025})
    assert response.status_code == 200
    data = body(response)
    assert data["restart"]["requested"] is False
    assert "the task broker does not answer" in data["restart"]["reason"]
    assert data["restart"]["reason"].endswith("PyGate still runs its former definition: restart it to apply the change.")
    assert data["message"].startswith("Gateway PyGate was saved, but not restarted: the restart of PyGate was not sent")
    assert Gateway.objects.get().port == 55025


def test_restart_1_on_a_stopped_gateway_only_saves(api):
    make_gateway(port=55026)
    response = send(api("administrator", "token"), "patch", "/api/gateways/PyGate/?restart=1", {"port": 55027})
    assert response.status_code == 200
    assert body(response)["restart"] == {
        "requested": False,
        "reason": "PyGate is not running, so there was nothing to restart: the change applies at its next start."}
    assert Gateway.objects.get().port == 55027 and not Activity.objects.exists()


def test_delete_removes_a_stopped_gateway_and_records_it(api):
    make_gateway(port=55028)
    response = api("administrator", "token").delete("/api/gateways/PyGate/")
    assert response.status_code == 200
    assert body(response) == {"deleted": "PyGate", "message": "Gateway PyGate was deleted."}
    assert not Gateway.objects.exists()
    entry = AuditEntry.objects.get()
    assert entry.action == "deleted" and entry.actor_name == "api:token-administrator"


def test_delete_refuses_a_running_gateway_as_the_page_does(api):
    make_gateway(server=REMOTE, port=55029, state="running", pid=4242, allow_unauthenticated_network=True)
    response = api("administrator", "token").delete("/api/gateways/PyGate/")
    assert response.status_code == 409
    assert body(response)["error"] == "PyGate is running: stop PyGate first, then delete it."
    assert Gateway.objects.exists()


def test_get_shows_the_definition_without_secrets(api):
    make_gateway(port=55030, use_passphrase=True, passphrase_verifier=VERIFIER, allow_no_passphrase=False)
    data = body(api("viewer", "token").get("/api/gateways/PyGate/"))
    assert data["definition"]["use_passphrase"] is True and data["definition"]["port"] == 55030
    assert "passphrase" not in data["definition"]
    assert VERIFIER.split("$")[-1] not in json.dumps(data)


def test_a_session_patch_needs_the_csrf_token(make_user):
    from portal.roles import ADMINISTRATOR

    make_gateway(port=55031)
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("ada", ADMINISTRATOR))
    response = send(client, "patch", "/api/gateways/PyGate/", {"port": 55032})
    assert response.status_code == 403 and "CSRF check failed" in body(response)["error"]
    assert Gateway.objects.get().port == 55031
