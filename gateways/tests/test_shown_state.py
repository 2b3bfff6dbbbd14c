"""A request on its way is shown as starting or stopping everywhere: the list, the API and
the dashboard's counts, which must agree with each other."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from gateways.models import STATE_CHOICES, Gateway
from gateways.tests.factories import make_gateway
from portal import tokens
from processes import control
from processes.state import SHOWN_STATE

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
REMOTE = "192.0.2.10"  # TEST-NET-1: no worker serves its queue, so a request stays on its way


@pytest.mark.django_db
@pytest.mark.parametrize("state", [s for s, _ in STATE_CHOICES])
@pytest.mark.parametrize("intent", ["", "start", "stop"])
@pytest.mark.parametrize("unseen", [True, False])
def test_the_count_uses_the_same_rule_as_the_pages(state, intent, unseen):
    changed = NOW - dt.timedelta(seconds=5) if unseen else NOW + dt.timedelta(seconds=5)
    gateway = make_gateway(state=state, intent=intent, intent_at=NOW if intent else None, state_changed_at=changed)
    assert Gateway.objects.annotate(shown=SHOWN_STATE).get(pk=gateway.pk).shown == gateway.shown_state


@pytest.mark.django_db
def test_a_start_on_its_way_is_starting_in_the_api_and_on_the_dashboard_not_stopped(
        role_client, operator, redis_service):
    gateway = make_gateway(server=REMOTE)
    make_gateway(name="Idle", port=55002)
    control.request(gateway, "start", operator)

    _row, token = tokens.create(operator, "tests")
    data = json.loads(Client(headers={"Authorization": f"Bearer {token}"}).get("/api/gateways/PyGate/").content)
    assert data["state"] == "starting" and data["reported_state"] == "stopped" and data["in_transition"] is True
    assert data["requested"] == "start"

    html = role_client("viewer").get("/").content.decode()
    assert '<span class="state state-starting">Starting</span> <strong>1</strong>' in html
    assert '<span class="state state-stopped">Stopped</span> <strong>1</strong>' in html  # only Idle


@pytest.mark.django_db
def test_a_stop_on_its_way_is_stopping_not_running(role_client, operator, redis_service):
    gateway = make_gateway(server=REMOTE, state="running", state_changed_at=NOW - dt.timedelta(hours=1))
    control.request(gateway, "stop", operator)
    assert control.status_of(Gateway.objects.get())["state"] == "stopping"
    html = role_client("viewer").get("/").content.decode()
    assert '<span class="state state-stopping">Stopping</span> <strong>1</strong>' in html
    assert "state-running" not in html


@pytest.mark.django_db
def test_the_list_filter_finds_a_starting_gateway_under_starting(role_client, operator, redis_service):
    control.request(make_gateway(server=REMOTE), "start", operator)
    make_gateway(name="Idle", port=55002)
    client = role_client("viewer")
    starting = client.get("/gateways/?state=starting").content.decode()
    stopped = client.get("/gateways/?state=stopped").content.decode()
    assert ">PyGate<" in starting and ">Idle<" not in starting
    assert ">Idle<" in stopped and ">PyGate<" not in stopped
