"""A start task returns once the keeper is launched: a gateway slow to become ready does not
hold one of the worker's two slots, so other starts are not kept waiting behind it. The
watcher copies the outcome into the row and ends the request. Real worker (concurrency 2),
real keepers, real servers."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from conftest import wait_until
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port, server_processes
from gateways.tests.test_start_failures import wrapped
from portal import tokens
from processes import control
from processes.models import Activity

pytestmark = [pytest.mark.worker]

# Seconds before the slow servers even listen: long beside a start on a loaded machine (2 to 3 s
# when three test runs share two cores), so that "the fast one ran first" cannot be a race.
SLOW_READY = 8.0


def slow_gateway(name: str) -> Gateway:
    return make_gateway(name=name, port=free_port(), init_timeout=60, restart_policy="never",
                        python_options=wrapped(f"import time; time.sleep({SLOW_READY})"))


def test_three_slow_starts_do_not_delay_a_fast_one(gateway_processes, operator):
    slow = [slow_gateway(f"Slow{i}") for i in range(3)]
    fast = make_gateway(name="Fast", port=free_port(), restart_policy="never")
    # The slow ones first: their tasks are ahead of the fast one's in the queue. Before, two of
    # them held both slots for SLOW_READY seconds each and the fast start waited behind them.
    for gateway in [*slow, fast]:
        control.request(gateway, "start", operator)

    running_at: dict[str, float] = {}
    states_when_fast_ran: dict[str, str] = {}

    def all_running() -> bool:
        rows = {g.name: g for g in Gateway.objects.filter(pk__in=[g.pk for g in [*slow, fast]])}
        now = time.monotonic()
        for name, row in rows.items():
            if row.state == "running" and not row.intent and name not in running_at:
                running_at[name] = now
                if name == "Fast":
                    states_when_fast_ran.update({n: r.state for n, r in rows.items() if n != "Fast"})
        failed = {n: (r.state, r.last_error) for n, r in rows.items() if r.state in {"fatal", "exited", "stopped"}
                  and not r.intent}
        assert not failed, f"a start failed: {failed}"
        return len(running_at) == 4

    wait_until(all_running, timeout=90, interval=0.02, message=f"not all running: {running_at}")

    # The timeline: the fast one ran while every slow one was still starting. (Held behind two of
    # them, as before, it would have run after they did. How long before them it ran depends on
    # how loaded the machine is, so no margin is asked: the order is the proof.)
    assert len(states_when_fast_ran) == 3 and "running" not in states_when_fast_ran.values(), (
        states_when_fast_ran, running_at)
    assert running_at["Fast"] < min(running_at[g.name] for g in slow), running_at
    # And the slow ones really run: a server process on each port, the outcome in the Activity.
    for gateway in slow:
        assert server_processes(gateway.port), gateway.name
        assert Activity.objects.of(gateway).filter(to_state="running").exists()


def test_wait_still_answers_the_settled_state_of_a_slow_start(gateway_processes, operator):
    gateway = slow_gateway("SlowWait")
    _row, token = tokens.create(operator, "tests")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    started = time.monotonic()
    response = client.post(f"/api/gateways/{gateway.name}/start?wait=1")
    took = time.monotonic() - started
    assert response.status_code == 200, response.content
    data = json.loads(response.content)
    assert data["state"] == "running" and data["in_transition"] is False and data["pid"], data
    assert took >= SLOW_READY, f"answered running after {took:.1f} s, before the server could listen"
    gateway.refresh_from_db()
    assert not gateway.intent and "request" not in gateway.startup


def test_a_stop_during_a_slow_start_wins_and_the_start_does_not_clear_its_intent(gateway_processes, operator):
    gateway = slow_gateway("SlowStop")
    first = control.request(gateway, "start", operator)
    wait_until(lambda: Gateway.objects.get(pk=gateway.pk).state == "starting", timeout=30, interval=0.02)
    control.request(Gateway.objects.get(pk=gateway.pk), "stop", operator)
    first = control.wait_settled(first, "start", 60)
    assert first.state == "stopped" and not server_processes(gateway.port)
    assert control.superseded(first, "start")


def test_servers_slow_to_stop_do_not_delay_a_start(gateway_processes, operator):
    # These servers ignore SIGTERM: the keeper waits their stop timeout, then SIGKILLs them.
    # Before, each stop task held a slot for that long; now it waits at most tasks.STOP_WAIT.
    deaf = wrapped("import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal = lambda *a: None")
    stubborn = [make_gateway(name=f"Deaf{i}", port=free_port(), stop_timeout=12, restart_policy="never",
                             python_options=deaf) for i in range(2)]
    fast = make_gateway(name="Quick", port=free_port(), restart_policy="never")
    for gateway in stubborn:
        control.request(gateway, "start", operator)
    for gateway in stubborn:
        wait_until(lambda g=gateway: Gateway.objects.get(pk=g.pk).state == "running" and
                   not Gateway.objects.get(pk=g.pk).intent, timeout=30, interval=0.05)
    for gateway in stubborn:
        control.request(Gateway.objects.get(pk=gateway.pk), "stop", operator)
    control.request(fast, "start", operator)

    done_at: dict[str, float] = {}

    def settled() -> bool:
        for row in Gateway.objects.filter(pk__in=[g.pk for g in [*stubborn, fast]]):
            goal = "running" if row.name == "Quick" else "stopped"
            if row.state == goal and not row.intent and row.name not in done_at:
                done_at[row.name] = time.monotonic()
        return len(done_at) == 3

    wait_until(settled, timeout=90, interval=0.02, message=f"not settled: {done_at}")
    # The fast start ran well before the stubborn servers' stop timeout was over, and the stops
    # that the watcher settled still end stopped, nothing left on their ports.
    assert done_at["Quick"] < min(done_at["Deaf0"], done_at["Deaf1"]) - 4, done_at
    for gateway in stubborn:
        assert not server_processes(gateway.port)
        assert Activity.objects.of(gateway).filter(to_state="stopped").exists()
