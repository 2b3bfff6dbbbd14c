"""Starts that cannot succeed fail fast and say why; a start that gives up is fatal;
the connection timeout is what the readiness check waits for. Real worker, keepers, servers."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from conftest import wait_until
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port, server_processes, start_and_wait, wait_state
from portal import tokens
from processes import control
from processes.models import Activity

pytestmark = [pytest.mark.worker]

# python [options] -m gateways.server ARGS: with "-c CODE" first, "-m gateways.server ARGS"
# become sys.argv[1:] of CODE, which then runs the real server with a twist.
SERVER_THEN = "import sys, gateways.server as s; {twist}; sys.exit(s.main(sys.argv[3:]))"


def wrapped(twist: str) -> str:
    return f"-c '{SERVER_THEN.format(twist=twist)}'"


def api_client(user: object) -> Client:
    _row, token = tokens.create(user, "tests")
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_a_server_name_that_does_not_resolve_fails_within_seconds_naming_the_host_and_the_fix(
        gateway_processes, operator):
    gateway = make_gateway(server="no.such.host.invalid", port=free_port())
    started = time.monotonic()
    response = api_client(operator).post(f"/api/gateways/{gateway.name}/start?wait=1")
    took = time.monotonic() - started
    assert response.status_code == 409, response.content
    assert took < 5, f"the refusal took {took:.1f} s"
    data = json.loads(response.content)
    assert data["error"].startswith(
        "The start of PyGate ended stopped: Start refused: the server name no.such.host.invalid does not resolve (")
    assert "correct the server name no.such.host.invalid, or enter an IP address" in data["error"]
    assert data["state"] == "stopped" and data["in_transition"] is False
    gateway.refresh_from_db()
    assert not gateway.intent and "no.such.host.invalid does not resolve" in gateway.last_error
    refused = Activity.objects.of(gateway).get(level="error")
    assert refused.message.startswith("Start refused: the server name no.such.host.invalid does not resolve")
    # A Stop of it has nothing to stop and is not left hanging either.
    response = api_client(operator).post(f"/api/gateways/{gateway.name}/stop?wait=1")
    assert response.status_code == 200 and json.loads(response.content)["state"] == "stopped"


def test_a_new_start_clears_the_last_refusal_at_once(gateway_processes, operator):
    gateway = make_gateway(server="no.such.host.invalid", port=free_port())
    assert api_client(operator).post(f"/api/gateways/{gateway.name}/start?wait=1").status_code == 409
    gateway.refresh_from_db()
    assert "does not resolve" in gateway.last_error
    Gateway.objects.filter(pk=gateway.pk).update(server="127.0.0.1")  # the operator corrects it
    client = Client()
    client.force_login(operator)
    row = client.post(f"/gateways/{gateway.name}/start/", headers={"HX-Request": "true"}).content.decode()
    # Answered before the worker acts on the start: the old refusal is gone from the row already.
    assert "does not resolve" not in row
    gateway = wait_state(gateway, {"running", "fatal", "exited", "stopped"}, timeout=20)
    assert gateway.state == "running" and gateway.last_error == ""
    control.request(gateway, "stop", operator)
    wait_state(gateway, {"stopped"})


def test_quick_exits_after_ready_end_fatal_with_the_reason(gateway_processes, operator):
    # Ready, then dead 0.6 s later, as a server that cannot start a thread dies: three times in a row.
    gateway = make_gateway(port=free_port(), restart_policy="on-failure",
                           python_options=wrapped("import threading, os; threading.Timer(0.6, os._exit, [1]).start()"))
    start_and_wait(gateway, operator, timeout=30)
    gateway = wait_state(gateway, {"fatal"}, timeout=30)
    assert "gave up after 3 quick exits in a row" in gateway.last_error
    trail = list(Activity.objects.of(gateway).exclude(to_state="").order_by("id")
                 .values_list("to_state", flat=True))
    assert trail.count("running") == 3 and trail[-2:] == ["exited", "fatal"]
    assert Activity.objects.of(gateway).filter(to_state="fatal").get().level == "error"
    assert control.status_of(gateway)["state"] == "fatal"
    assert server_processes(gateway.port) == []


@pytest.mark.parametrize(("connection_timeout", "ready"), [(3, True), (2, False)])
def test_the_readiness_check_waits_the_connection_timeout_for_a_slow_handshake(
        gateway_processes, operator, connection_timeout, ready):
    # Every handshake of this server takes 2.5 s: a live but slow server (a loaded host).
    # (Checking the client's answer is where the server does its handshake work.)
    slow = ("import time; h = s.GatewayServer._check_auth; "
            "s.GatewayServer._check_auth = lambda self, *a: (time.sleep(2.5), h(self, *a))[1]")
    gateway = make_gateway(port=free_port(), connection_timeout=connection_timeout, init_timeout=5,
                           restart_policy="never", python_options=wrapped(slow))
    control.request(gateway, "start", operator)
    if ready:
        gateway = wait_state(gateway, {"running", "fatal", "exited", "stopped"}, timeout=20)
        assert gateway.state == "running", gateway.last_error
        assert 2.5 <= gateway.startup["time_to_ready"] < 4
        control.request(gateway, "stop", operator)
        wait_state(gateway, {"stopped"})
    else:
        # Each 2 s attempt ends before the server answers: not ready within the 5 s initialization timeout.
        backoff = wait_until(lambda: Activity.objects.of(gateway).filter(to_state="backoff").first(),
                             timeout=20, message="the slow start was never given up")
        assert "not ready within init_timeout 5 s" in backoff.message
        control.request(Gateway.objects.get(pk=gateway.pk), "stop", operator)
        wait_state(gateway, {"stopped"}, timeout=20)
