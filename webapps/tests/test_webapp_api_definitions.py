"""The web applications' JSON API: create (POST), change (PATCH) and delete (DELETE) through the
page's form, with the variables as JSON objects and secret values never answered."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from portal import tokens
from portal.models import AuditEntry
from portal.roles import ADMINISTRATOR, OPERATOR, VIEWER
from processes.models import Activity
from webapps.models import WebApp
from webapps.tests.webapp_factories import app_dir, make_webapp

pytestmark = pytest.mark.django_db
GROUPS = {"viewer": VIEWER, "operator": OPERATOR, "administrator": ADMINISTRATOR}
SECRET = "t0p-s3cret-value"


@pytest.fixture
def api(make_user):  # type: ignore[no-untyped-def]
    def client_for(role: str) -> Client:
        user = make_user(f"token-{role}", GROUPS[role])
        return Client(headers={"Authorization": f"Bearer {tokens.create(user, 'tests')[1]}"})

    return client_for


def send(client, method: str, url: str, payload: object):  # type: ignore[no-untyped-def]
    return getattr(client, method)(url, json.dumps(payload), content_type="application/json")


def test_an_administrator_creates_an_application_with_its_variables_as_objects(api, tmp_path):
    folder = app_dir(tmp_path)
    response = send(api("administrator"), "post", "/api/webapps/", {
        "name": "/hello", "directory": str(folder), "module": "hello", "workers": 2,
        "environment": {"APP_MODE": "demo"}, "secret_environment": {"API_TOKEN": SECRET}, "debug": True,
    })
    assert response.status_code == 201, response.content
    webapp = WebApp.objects.get()
    assert webapp.workers == 2 and webapp.debug and webapp.environment == {"APP_MODE": "demo"}
    assert webapp.secret_environment == {"API_TOKEN": SECRET}
    data = response.json()
    assert data["definition"]["secret_environment"] == ["API_TOKEN"]
    assert data["definition"]["environment"] == {"APP_MODE": "demo"} and data["definition"]["callable"] == "app"
    assert SECRET not in response.content.decode()
    entry = AuditEntry.objects.get()
    assert entry.action == "created" and entry.actor_name == "api:token-administrator"
    assert SECRET not in json.dumps(entry.changes)


def test_the_forms_errors_come_per_field_and_secret_lines_are_never_quoted(api, tmp_path):
    response = send(api("administrator"), "post", "/api/webapps/", {
        "name": "/a//b", "directory": str(tmp_path / "missing"), "module": "hello",
        "secret_environment": {"1BAD": SECRET}, "workers": 0,
    })
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"name", "directory", "secret_environment", "workers"} <= set(errors)
    assert errors["name"] == ["“/a//b” has an empty segment (//): write it with single slashes, e.g. /shop/api."]
    assert SECRET not in response.content.decode()
    assert not WebApp.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_administrator_creates_changes_or_deletes(api, tmp_path, role):
    make_webapp(app_dir(tmp_path))
    client = api(role)
    for answer in [send(client, "post", "/api/webapps/", {"name": "/other"}),
                   send(client, "patch", "/api/webapps/hello/", {"workers": 3}),
                   client.delete("/api/webapps/hello/")]:
        assert answer.status_code == 403
        assert answer.json()["error"].startswith("Only an Administrator may ")
        assert "web application definitions" in answer.json()["error"]
    assert WebApp.objects.get().workers == 1


def test_a_patch_keeps_a_secret_given_as_null_and_drops_one_left_out(api, tmp_path):
    make_webapp(app_dir(tmp_path), name="/shop/api", secret_environment={"KEEP": SECRET, "DROP": "x" * 12},
                environment={"A": "1"})
    response = send(api("administrator"), "patch", "/api/webapps/shop/api/",
                    {"secret_environment": {"KEEP": None, "NEW": "n3w-s3cret"}, "threads": 4})
    assert response.status_code == 200, response.content
    webapp = WebApp.objects.get()
    assert webapp.secret_environment == {"KEEP": SECRET, "NEW": "n3w-s3cret"}
    assert webapp.threads == 4 and webapp.environment == {"A": "1"}  # not given: kept
    assert SECRET not in response.content.decode() and "n3w-s3cret" not in response.content.decode()
    assert response.json()["definition"]["secret_environment"] == ["KEEP", "NEW"]


def test_a_running_application_is_saved_and_restarted_with_restart_1(api, tmp_path, redis_service):
    make_webapp(app_dir(tmp_path), state="running", pid=4242)
    client = api("administrator")
    refused = send(client, "patch", "/api/webapps/hello/", {"workers": 2})
    assert refused.status_code == 409
    assert refused.json()["error"].startswith("Nothing was saved: /hello is running: stop /hello first, then change "
                                              "workers.")
    assert WebApp.objects.get().workers == 1
    response = send(client, "patch", "/api/webapps/hello/?restart=1", {"workers": 2})
    assert response.status_code == 200, response.content
    assert response.json()["restart"] == {"requested": True}
    webapp = WebApp.objects.get()
    assert webapp.workers == 2 and webapp.requested == "restart"
    assert Activity.objects.of(webapp).get().message == "Restart requested"


def test_delete_refuses_a_running_application_and_removes_a_stopped_one(api, tmp_path):
    webapp = make_webapp(app_dir(tmp_path), state="running", pid=4242)
    client = api("administrator")
    refused = client.delete("/api/webapps/hello/")
    assert refused.status_code == 409
    assert refused.json()["error"] == "/hello is running: stop /hello first, then delete it."
    WebApp.objects.filter(pk=webapp.pk).update(state="stopped", pid=None)
    response = client.delete("/api/webapps/hello")
    assert response.status_code == 200 and response.json()["deleted"] == "/hello"
    assert not WebApp.objects.exists()
    assert AuditEntry.objects.get().action == "deleted"
