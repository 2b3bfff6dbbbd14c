"""The admin's changelists of runs and activity."""

from __future__ import annotations

import datetime as dt

import pytest

from processes.models import Activity, Run

pytestmark = pytest.mark.django_db


def test_runs_and_activity_name_the_kind_as_their_filter_does(admin_client_):
    now = dt.datetime.now(dt.UTC)
    Run.objects.create(kind="webapp", object_id=1, name="/flask", trigger="ada", started_at=now, outcome="running")
    Activity.objects.create(kind="webapp", object_id=1, name="/flask", at=now, to_state="running", trigger="ada")
    for url in ("/admin/processes/run/", "/admin/processes/activity/"):
        html = admin_client_.get(url).content.decode()
        assert '<td class="field-kind_shown">web application</td>' in html, url
        assert ">webapp<" not in html, url


def test_a_runs_times_are_a_date_over_a_time_and_every_column_is_listed(admin_client_):
    started = dt.datetime(2026, 12, 7, 20, 25, 37, tzinfo=dt.UTC)
    Run.objects.create(kind="gateway", object_id=1, name="PyGate", trigger="ada", started_at=started,
                       ready_at=started + dt.timedelta(seconds=1), stopped_at=started + dt.timedelta(seconds=61),
                       outcome="exited", exit_code=1)
    html = admin_client_.get("/admin/processes/run/").content.decode()
    assert '<span class="nowrap">2026-12-07</span> <span class="nowrap">20:25:37</span>' in html
    for column in ("ready", "stopped", "duration", "outcome", "exit"):
        assert f'class="column-{column}' in html or f'class="sortable column-{column}' in html, column
    assert "61.0 s" in html and "exit 1" in html


def test_the_admin_loads_its_phone_and_laptop_layout(admin_client_):
    html = admin_client_.get("/admin/processes/run/").content.decode()
    assert "/static/css/admin.css" in html and "/static/js/admin_cards.js" in html
    # No sidebar of every model beside the changelist: the table needs the width.
    assert 'id="nav-sidebar"' not in html
