"""The last request wins: mixed Start, Stop and Restart requests, from the API and the
control service at once, plus old tasks delivered again, settle on the last request.

Real worker, real keepers, real servers; the end state is checked against the
operating system (is a server process alive on the port?) as well as the database.
"""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from conftest import wait_until, wait_worker_idle, worker_idle
from gateways import runtime
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port, server_processes
from portal import tokens
from processes import control, tasks

pytestmark = [pytest.mark.worker]

GOAL = {"start": "running", "restart": "running", "stop": "stopped"}


def settled(gateway: Gateway) -> Gateway:
    def done() -> bool:
        gateway.refresh_from_db()
        return not gateway.intent and gateway.state in {"running", "stopped", "exited", "fatal"}

    wait_until(done, timeout=60, message=f"{gateway.name} did not settle ({gateway.state}, intent {gateway.intent})")
    return gateway


def os_state(port: int) -> str:
    """What the operating system says: a live gateway server on the port, or none."""
    return "running" if server_processes(port) else "stopped"


def fire(gateway: Gateway, user: object, token: str, plan: list[tuple[str, str, float]]) -> list[tuple[int, str]]:
    """Send every request of ``plan`` (action, channel, delay) from its own thread, all at once."""
    sent: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    go = threading.Event()

    def one(action: str, channel: str, delay: float) -> None:
        try:
            go.wait()
            time.sleep(delay)
            if channel == "api":
                client = Client(headers={"Authorization": f"Bearer {token}"})
                response = client.post(f"/api/gateways/{gateway.name}/{action}")
                assert response.status_code == 202, response.content
                sent.append((json.loads(response.content)["request"]["seq"], action))
            elif channel == "api-wait":
                # Waits for the state the latest request leads to, and tells the truth about it.
                client = Client(headers={"Authorization": f"Bearer {token}"})
                response = client.post(f"/api/gateways/{gateway.name}/{action}?wait=1")
                data = json.loads(response.content)
                sent.append((data["request"]["seq"], action))
                if response.status_code == 200:
                    assert data["state"] == GOAL[action], data
                else:
                    assert response.status_code == 409, data
                    assert data["error"].startswith(("A later ", f"The {action} of {gateway.name} ended")), data
            else:
                row = control.request(Gateway.objects.get(pk=gateway.pk), action, user)
                sent.append((row.sent_seq, action))
        except BaseException as e:  # reported by the test below
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=step) for step in plan]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return sent


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_mixed_concurrent_requests_settle_on_the_last_one(gateway_processes, operator, seed):
    rng = random.Random(seed)
    gateway = make_gateway(port=free_port(), init_timeout=5, stop_timeout=2)
    _row, token = tokens.create(operator, "tests")
    plan = [(rng.choice(["start", "stop", "restart"]), rng.choice(["api", "api-wait", "service"]),
             rng.random() * 0.3) for _ in range(8)]

    sent = fire(gateway, operator, token, plan)
    assert sorted(seq for seq, _ in sent) == list(range(1, len(plan) + 1)), f"not one number each: {sent}"
    last_seq, last_action = max(sent)
    gateway = settled(gateway)
    assert gateway.request_seq == last_seq and gateway.requested == last_action
    # Tasks of older requests may still be in the queue: every one is run, and must not act.
    wait_worker_idle(gateway_processes)
    gateway = settled(gateway)
    assert gateway.state == GOAL[last_action], (plan, sent, gateway.last_error)
    assert os_state(gateway.port) == GOAL[last_action], (plan, sent)

    # An old task delivered again (a redelivered message) does nothing, whatever it asks: the same
    # server process (or none) before and after, and no new request.
    oldest_seq, _ = min(sent)
    servers = {p.pid for p in server_processes(gateway.port)}
    stale = tasks.stop_process if GOAL[last_action] == "running" else tasks.start_process
    assert stale("gateway", gateway.pk, "otto", oldest_seq) == tasks.SUPERSEDED
    assert tasks.restart_process("gateway", gateway.pk, "otto", oldest_seq) == tasks.SUPERSEDED
    wait_worker_idle(gateway_processes)
    gateway = settled(gateway)
    assert gateway.request_seq == last_seq
    assert gateway.state == GOAL[last_action] and os_state(gateway.port) == GOAL[last_action]
    assert {p.pid for p in server_processes(gateway.port)} == servers, "a stale task restarted or started the server"


def test_four_quick_restarts_then_stop_with_wait_answers_stopped_and_it_stays_stopped(gateway_processes, operator):
    gateway = make_gateway(port=free_port(), init_timeout=5, stop_timeout=2)
    _row, token = tokens.create(operator, "tests")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    for _ in range(4):
        assert client.post(f"/api/gateways/{gateway.name}/restart").status_code == 202
    response = client.post(f"/api/gateways/{gateway.name}/stop?wait=1")
    assert response.status_code == 200, response.content
    assert json.loads(response.content)["state"] == "stopped"
    # Seconds later it still does not run: no earlier task starts it again.
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        assert os_state(gateway.port) == "stopped", "an earlier restart started the gateway after the Stop"
        time.sleep(0.1)
    gateway.refresh_from_db()
    assert gateway.state == "stopped" and not gateway.intent


def test_a_wait_overtaken_by_a_later_request_says_so_and_reports_the_truth(gateway_processes, operator):
    gateway = make_gateway(port=free_port(), init_timeout=5, stop_timeout=2)
    first = control.request(gateway, "start", operator)
    control.request(Gateway.objects.get(pk=gateway.pk), "stop", operator)
    first = control.wait_settled(first, "start", 30)
    assert first.state == "stopped" and os_state(gateway.port) == "stopped"
    assert control.superseded(first, "start") == (
        f"A later stop request replaced this start of {gateway.name}; it is now stopped. "
        "See its Activity page for who asked."
    )


def test_the_worker_counts_as_idle_only_once_every_task_sent_has_run(gateway_processes):
    """What the waits above rely on: a task held for later, then run, keeps the worker busy."""
    gateway = make_gateway(port=free_port())
    wait_worker_idle(gateway_processes)
    sent = time.monotonic()
    # An old request's number: the task does nothing when it runs, two seconds from now.
    tasks.start_process.apply_async(args=["gateway", gateway.pk, "otto", -1], queue=runtime.queue_of(gateway),
                                    countdown=2)
    assert not worker_idle(gateway_processes)
    wait_worker_idle(gateway_processes)
    assert time.monotonic() - sent >= 2, "idle before the task held for later had run"
