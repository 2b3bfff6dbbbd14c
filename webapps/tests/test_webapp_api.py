"""The web applications' JSON API: every endpoint by every role, with a session and with a token."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from portal import tokens
from portal.roles import ADMINISTRATOR, OPERATOR, VIEWER
from webapps.models import WebApp
from webapps.tests.webapp_factories import app_dir, make_webapp

pytestmark = pytest.mark.django_db
GROUPS = {"viewer": VIEWER, "operator": OPERATOR, "administrator": ADMINISTRATOR}
NO_BROKER = "redis+socket:///nonexistent/redis.sock"


@pytest.fixture
def api(make_user):  # type: ignore[no-untyped-def]
    def client_for(role: str, auth: str = "token") -> Client:
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


@pytest.fixture
def webapp(tmp_path) -> WebApp:
    return make_webapp(app_dir(tmp_path), name="/shop/api", secret_environment={"API_TOKEN": "t0p-s3cret"},
                       environment={"APP_MODE": "demo"})


@pytest.mark.parametrize("role", ["viewer", "operator", "administrator"])
@pytest.mark.parametrize("auth", ["session", "token"])
def test_every_role_reads_the_list_and_one_application(api, webapp, role, auth):
    client = api(role, auth)
    listing = client.get("/api/webapps/")
    assert listing.status_code == 200
    assert [w["path"] for w in listing.json()["webapps"]] == ["/shop/api"]
    for url in ["/api/webapps/shop/api/", "/api/webapps/shop/api", "/api/webapps/SHOP/api/"]:
        body = client.get(url).json()
        assert body["state"] == "stopped" and body["engine"] == "gunicorn" and body["name"] == "/shop/api"
        assert body["environment"] == {"APP_MODE": "demo"} and body["secret_environment"] == ["API_TOKEN"]
    assert "t0p-s3cret" not in listing.content.decode()


def test_anonymous_gets_401_in_json(api, webapp):
    response = api("anonymous").get("/api/webapps/")
    assert response.status_code == 401 and "Authorization: Bearer" in response.json()["error"]


def test_an_unknown_application_is_a_json_404(api):
    response = api("viewer").get("/api/webapps/nope/")
    assert response.status_code == 404
    assert response.json()["error"] == "There is no web application at /nope: GET /api/webapps/ lists them."


def test_a_viewer_cannot_start(api, webapp):
    response = api("viewer").post("/api/webapps/shop/api/start")
    assert response.status_code == 403
    assert "Only an Operator or an Administrator may start and stop web applications" in response.json()["error"]
    webapp.refresh_from_db()
    assert webapp.intent == ""


@override_settings(REDIS_URL=NO_BROKER)
def test_without_a_broker_a_start_answers_503_saying_so(api, webapp):
    response = api("operator").post("/api/webapps/shop/api/start/")
    assert response.status_code == 503
    assert "the task broker does not answer" in response.json()["error"]
    assert response.json()["name"] == "/shop/api"


def test_a_post_that_names_no_action_is_a_404_that_says_what_to_post(api, webapp):
    response = api("operator").post("/api/webapps/shop/api/launch")
    assert response.status_code == 404 and "start, stop or restart" in response.json()["error"]


def test_an_action_on_an_unknown_application_is_a_404(api):
    response = api("operator").post("/api/webapps/nope/stop")
    assert response.status_code == 404 and "no web application at /nope" in response.json()["error"]


def test_a_bad_wait_is_refused(api, webapp):
    response = api("operator").post("/api/webapps/shop/api/start?wait=maybe")
    assert response.status_code == 400 and "wait=maybe is not understood" in response.json()["error"]


def test_a_session_post_needs_the_csrf_token(make_user, webapp):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("otto", OPERATOR))
    response = client.post("/api/webapps/shop/api/start")
    assert response.status_code == 403 and "CSRF check failed" in response.json()["error"]


def test_a_method_that_is_not_allowed_says_which_are(api, webapp):
    response = api("viewer").put("/api/webapps/shop/api/")
    assert response.status_code == 405 and response["Allow"] == "GET, POST, PATCH, DELETE"
