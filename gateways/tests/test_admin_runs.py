"""Runs and activity in the Django admin: readable by administrators, never changed there."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from processes.models import Activity, Run

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 5, 31, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def run(administrator) -> Run:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    return Run.objects.create(
        kind="gateway", object_id=gateway.pk, name=gateway.name, requested_by=administrator, trigger="api:ada", host="alpha",
        pid=4242, started_at=T0, ready_at=T0 + dt.timedelta(seconds=1), stopped_at=T0 + dt.timedelta(seconds=75),
        outcome=Run.Outcome.EXITED, exit_code=3,
    )


@pytest.fixture
def activity(run: Run) -> Activity:
    return Activity.objects.create(
        kind="gateway", object_id=run.object_id, name=run.name, at=T0, from_state="running", to_state="fatal",
        pid=4242, port=55001, exit_code=3, expected=False, trigger="keeper", level="error", host="alpha",
        message="gave up after 3 restarts", run=run,
    )


def test_an_administrator_lists_runs_with_their_columns(admin_client_: Client, run: Run) -> None:
    response = admin_client_.get("/admin/processes/run/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("PyGate", "api:ada", "alpha", "4242", "75.0 s", "Exited", "exit 3"):
        assert text in html, text


def test_a_filtered_changelist_does_not_count_the_whole_table(admin_client_: Client, run: Run) -> None:
    Run.objects.create(kind="gateway", name="Other", trigger="otto", host="beta", started_at=T0, outcome="running")
    html = admin_client_.get("/admin/processes/run/?outcome__exact=running").content.decode()
    assert "1 result" in html
    assert "2 total" not in html, "a second COUNT(*) over every run"


def test_the_run_changelist_offers_its_filters_and_dates(admin_client_: Client, run: Run) -> None:
    html = admin_client_.get("/admin/processes/run/").content.decode()
    from processes.adapters import kinds_text

    # The name filter is titled by every registered kind ("By gateway or web application name").
    for title in (f"By {kinds_text('or')} name", "By requested by", "By outcome", "By started at"):
        assert title in html, title
    # The date hierarchy, at the days of the only month there are runs in.
    assert 'class="toplinks"' in html and "May 31" in html


def test_a_run_filter_narrows_the_list(admin_client_: Client, run: Run) -> None:
    Run.objects.create(kind="gateway", name="Other", trigger="otto", host="beta", started_at=T0, outcome="running")
    html = admin_client_.get("/admin/processes/run/?outcome__exact=running").content.decode()
    assert "Other" in html and "api:ada" not in html


def test_an_administrator_lists_activity_with_its_filters(admin_client_: Client, activity: Activity) -> None:
    response = admin_client_.get("/admin/processes/activity/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "gave up after 3 restarts" in html and "exit 3" in html
    for title in ("By level", "By to state", "By trigger", "By at"):
        assert title in html, title


def test_the_trigger_filter_finds_a_users_api_requests(admin_client_: Client, activity: Activity) -> None:
    Activity.objects.create(kind="gateway", name="PyGate", at=T0, trigger="api:ada", message="by the api")
    html = admin_client_.get("/admin/processes/activity/?trigger=ada").content.decode()
    assert "by the api" in html and "gave up" not in html
    html = admin_client_.get("/admin/processes/activity/?to_state=fatal").content.decode()
    assert "gave up" in html and "by the api" not in html


@pytest.mark.parametrize("model", ["run", "activity"])
def test_nothing_can_be_added(admin_client_: Client, run: Run, activity: Activity, model: str) -> None:
    assert admin_client_.get(f"/admin/processes/{model}/add/").status_code == 403
    html = admin_client_.get(f"/admin/processes/{model}/").content.decode()
    assert f"/admin/processes/{model}/add/" not in html


def test_a_run_cannot_be_changed(admin_client_: Client, run: Run) -> None:
    page = admin_client_.get(f"/admin/processes/run/{run.pk}/change/")
    assert page.status_code == 200, "it can be read"
    assert 'name="_save"' not in page.content.decode()
    response = admin_client_.post(f"/admin/processes/run/{run.pk}/change/", {"trigger": "forged", "host": "x"})
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.trigger == "api:ada"


def test_an_activity_row_cannot_be_changed(admin_client_: Client, activity: Activity) -> None:
    response = admin_client_.post(f"/admin/processes/activity/{activity.pk}/change/", {"message": "forged"})
    assert response.status_code == 403
    activity.refresh_from_db()
    assert activity.message == "gave up after 3 restarts"


@pytest.mark.parametrize("model", ["run", "activity"])
def test_nothing_can_be_deleted(admin_client_: Client, run: Run, activity: Activity, model: str) -> None:
    row = run if model == "run" else activity
    assert admin_client_.post(f"/admin/processes/{model}/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin_client_.post(
        f"/admin/processes/{model}/", {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert type(row).objects.filter(pk=row.pk).exists()
    assert Gateway.objects.filter(name="PyGate").exists()


@pytest.mark.parametrize("role", ["viewer", "operator"])
@pytest.mark.parametrize("model", ["run", "activity"])
def test_viewers_and_operators_cannot_use_the_admin(role_client, run: Run, activity: Activity, role: str,  # type: ignore[no-untyped-def]
                                                     model: str) -> None:
    response = role_client(role).get(f"/admin/processes/{model}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_anonymous_is_sent_to_the_admin_login(client: Client, run: Run) -> None:
    response = client.get("/admin/processes/run/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
