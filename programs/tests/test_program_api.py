"""The JSON API of programs: the roles, create/change/delete through the form, start/stop with a real worker."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from portal import tokens
from portal.models import AuditEntry
from portal.roles import ADMINISTRATOR, OPERATOR, VIEWER
from programs.models import Program
from programs.tests.conftest import make_program, wait_state

GROUPS = {"viewer": VIEWER, "operator": OPERATOR, "administrator": ADMINISTRATOR}
SECRET = "api-s3cr3t-7781"


@pytest.fixture
def api(make_user):  # type: ignore[no-untyped-def]
    """api(role): a client of that role sending a token."""

    made: dict[str, object] = {}

    def client_for(role: str) -> Client:
        if role not in made:
            made[role] = make_user(f"token-{role}", GROUPS[role])
        user = made[role]
        return Client(headers={"Authorization": f"Bearer {tokens.create(user, 'tests')[1]}"})

    return client_for


def send(client: Client, method: str, url: str, payload: object | None = None):  # type: ignore[no-untyped-def]
    if payload is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, json.dumps(payload), content_type="application/json")


@pytest.mark.django_db
def test_an_administrator_creates_a_program_and_its_secret_is_in_no_answer(api):
    response = send(api("administrator"), "post", "/api/programs/",
                    {"name": "worker", "command": "sleep 30", "environment": {"QUEUE": "emails"},
                     "secret_environment": {"TOKEN": SECRET}, "probe": "tcp", "probe_target": "127.0.0.1:8000"})
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["name"] == "worker" and data["state"] == "stopped" and data["message"] == "Program worker was created."
    assert data["definition"]["command"].endswith("/sleep 30") and data["definition"]["command"].startswith("/")
    assert data["definition"]["environment"] == {"QUEUE": "emails"}
    assert data["definition"]["secret_environment"] == ["TOKEN"]
    assert data["command"] == data["definition"]["command"] and data["probe"] == "tcp 127.0.0.1:8000"
    assert SECRET not in response.content.decode()
    assert Program.objects.get().secret_environment == {"TOKEN": SECRET}
    entry = AuditEntry.objects.get()
    assert entry.action == "created" and entry.changes["secret_environment"] == {"secret": True}
    assert SECRET not in json.dumps(entry.changes)
    for url in ("/api/programs/", "/api/programs/worker/"):
        assert SECRET not in send(api("viewer"), "get", url).content.decode()


@pytest.mark.django_db
def test_a_bad_definition_is_refused_field_by_field(api):
    response = send(api("administrator"), "post", "/api/programs/",
                    {"name": "bad one", "command": "/no/such/program", "probe": "tcp", "probe_target": "nowhere"})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "has characters a program name cannot have" in errors["name"][0]
    assert "/no/such/program does not exist on this host" in errors["command"][0]
    assert "is not host:port" in errors["probe_target"][0]
    assert not Program.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_administrator_creates_changes_or_deletes(api, role):
    make_program()
    client = api(role)
    answers = [
        send(client, "post", "/api/programs/", {"name": "other", "command": "sleep 1"}),
        send(client, "patch", "/api/programs/worker/", {"command": "sleep 2"}),
        send(client, "delete", "/api/programs/worker/"),
    ]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert "Only an Administrator may create program definitions" in answers[0].json()["error"]
    assert Program.objects.get().command.endswith("sleep 300")


@pytest.mark.django_db
def test_an_administrator_changes_and_deletes_a_stopped_program(api):
    make_program(secret_environment=f"TOKEN={SECRET}")
    client = api("administrator")
    response = send(client, "patch", "/api/programs/WORKER/", {"environment": {"A": "1"}, "stop_signal": "INT"})
    assert response.status_code == 200, response.content
    program = Program.objects.get()
    assert program.environment == {"A": "1"} and program.stop_signal == "INT"
    assert program.secret_environment == {"TOKEN": SECRET}  # not given: kept
    response = send(client, "delete", "/api/programs/worker/")
    assert response.status_code == 200 and response.json()["deleted"] == "worker"
    assert not Program.objects.exists()


@pytest.mark.django_db
def test_an_unknown_program_is_a_json_404(api):
    response = send(api("viewer"), "get", "/api/programs/nothing/")
    assert response.status_code == 404 and "There is no program named nothing" in response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["start", "stop", "restart"])
def test_a_viewer_cannot_start_stop_or_restart(api, action):
    make_program()
    response = send(api("viewer"), "post", f"/api/programs/worker/{action}")
    assert response.status_code == 403
    assert Program.objects.get().intent == ""


@pytest.mark.worker
def test_an_operator_starts_and_stops_it_and_waits_for_the_state(api, program_processes):
    program = make_program(name="api-sleeper", command="sleep 300")
    client = api("operator")
    response = send(client, "post", "/api/programs/api-sleeper/start/?wait=1")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "running" and response.json()["pid"]
    response = send(client, "post", "/api/programs/api-sleeper/stop?wait=1")  # without the slash too
    assert response.status_code == 200 and response.json()["state"] == "stopped"
    wait_state(program, {"stopped"})
