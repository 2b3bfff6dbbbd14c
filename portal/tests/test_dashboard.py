import pytest

from conftest import ROLES
from gateways.tests.factories import form_data, make_gateway


@pytest.mark.django_db
def test_anonymous_is_sent_to_log_in(client):
    assert client.get("/")["Location"] == "/login/?next=/"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES[1:])
def test_every_role_sees_gateways_by_state_and_latest_changes(role_client, role):
    make_gateway()
    html = role_client(role).get("/").content.decode()
    assert "Dashboard" in html
    assert "Stopped" in html and "<strong>1</strong>" in html
    assert "Latest changes" in html


@pytest.mark.django_db
def test_latest_changes_name_who_changed_what(admin_client_):
    admin_client_.post("/gateways/new/", form_data())
    html = admin_client_.get("/").content.decode()
    assert "ada created gateway" in html and "PyGate" in html


@pytest.mark.django_db
def test_a_user_without_role_is_refused(client, make_user):
    client.force_login(make_user("nobody", None))
    assert client.get("/").status_code == 403


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_the_health_panel_shows_the_broker_and_the_worker_with_its_host(role_client, celery_worker):
    html = role_client("viewer").get("/health/", headers={"HX-Request": "true"}).content.decode()
    assert "Redis broker answers" in html
    assert celery_worker in html
    host = celery_worker.split("@")[1]
    assert f"on host <strong>{host}</strong>" in html


@pytest.mark.django_db
def test_the_health_panel_says_when_the_broker_does_not_answer(role_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    html = role_client("viewer").get("/health/").content.decode()
    assert "does not answer" in html
    assert "No broker, so no worker can be reached." in html


@pytest.mark.django_db
def test_anonymous_gets_no_health(client):
    assert client.get("/health/").status_code == 302


@pytest.mark.django_db
def test_gateways_are_counted_by_their_state(role_client):
    make_gateway(name="A", port=1, state="running")
    make_gateway(name="B", port=2, state="running")
    make_gateway(name="C", port=3, state="fatal")
    html = role_client("viewer").get("/").content.decode()
    assert '<span class="state state-running">Running</span> <strong>2</strong>' in html
    assert '<span class="state state-fatal">Fatal</span> <strong>1</strong>' in html
    assert "state-stopped" not in html
