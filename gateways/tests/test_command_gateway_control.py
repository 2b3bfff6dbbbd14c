"""manage.py gateway start|stop|restart|status, and list with the real state."""

from __future__ import annotations

import getpass
import json
import re
import socket
import subprocess
import sys
from io import StringIO

import psutil
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from conftest import wait_until, worker_env
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import gone
from processes import control
from processes.models import Activity

REMOTE = "192.0.2.10"  # TEST-NET-1, no host here: its queue has no worker, requests are sent, nothing starts
STATUS_KEYS = {
    "name", "state", "pid", "server", "port", "host", "since", "in_transition", "last_error", "time_to_ready",
    "restarts", "requested", "request_seq", "reported_state", "run_as", "runs_as", "runs_as_root",
}


def run(*args: str) -> str:
    out = StringIO()
    call_command("gateway", *args, stdout=out, stderr=StringIO())
    return out.getvalue()




@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_start_wait_gives_running_then_status_then_stop_wait_gives_stopped(pygate):
    out = run("start", "PyGate", "--wait")
    match = re.fullmatch(r"PyGate is running \(pid (\d+), ready in \d+\.\d\d s\)\.\n", out)
    assert match, out
    pid = int(match.group(1))
    assert psutil.pid_exists(pid)

    status = json.loads(run("status", "pygate", "--json"))
    assert set(status) == STATUS_KEYS
    assert status["state"] == "running" and status["pid"] == pid and status["port"] == pygate.port
    assert "running" in run("list")
    text = run("status", "PyGate")
    assert "state: running" in text and f"pid: {pid}" in text

    assert run("stop", "PyGate", "--wait") == "PyGate is stopped.\n"
    assert json.loads(run("status", "PyGate", "--json"))["state"] == "stopped"
    wait_until(lambda: gone(pid), timeout=5, message=f"pid {pid} is still alive after the stop")
    trigger = f"cli:{getpass.getuser()}"
    assert Activity.objects.of(pygate).filter(trigger=trigger, message="Start requested").exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_start_that_is_refused_exits_with_the_reason(pygate):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", pygate.port))
        taken.listen()
        with pytest.raises(CommandError) as error:
            run("start", "PyGate", "--wait")
    message = str(error.value)
    assert message.startswith("PyGate is stopped after the start: Start refused:")
    assert str(pygate.port) in message and "manage.py gateway status PyGate" in message


@pytest.mark.django_db
@pytest.mark.parametrize("action", control.ACTIONS)
def test_without_wait_the_request_is_sent_and_recorded(redis_service, action):
    gateway = make_gateway(server=REMOTE)
    assert run(action, "PyGate") == f"{action.capitalize()} of PyGate requested.\n"
    gateway.refresh_from_db()
    assert gateway.intent == ("stop" if action == "stop" else "start")
    assert Activity.objects.get().trigger == f"cli:{getpass.getuser()}"


@pytest.mark.django_db
def test_an_operator_given_with_user_is_recorded_by_name(redis_service, operator):
    make_gateway(server=REMOTE)
    run("--user", "otto", "start", "PyGate")
    assert Activity.objects.get().trigger == "cli:otto"


@pytest.mark.django_db
def test_a_wait_that_times_out_says_what_to_check(redis_service):
    make_gateway(server=REMOTE)
    with pytest.raises(CommandError, match=rf"PyGate is still stopped after 0.3 s: is a worker running for host {REMOTE}"):
        run("start", "PyGate", "--wait", "--timeout", "0.3")


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["soon", "0", "-1"])
def test_a_bad_timeout_is_refused(value):
    make_gateway(server=REMOTE)
    with pytest.raises(CommandError, match="argument --timeout"):
        run("start", "PyGate", "--wait", "--timeout", value)
    assert Gateway.objects.get().intent == ""


@pytest.mark.django_db
def test_an_unknown_gateway_is_a_clear_error():
    with pytest.raises(CommandError, match="There is no gateway named 'Nope'"):
        run("status", "Nope")
    with pytest.raises(CommandError, match="There is no gateway named 'Nope'"):
        run("start", "Nope")


@pytest.mark.django_db
def test_list_shows_the_real_state():
    make_gateway(name="PyGate", port=55001, state="running", pid=1234)
    make_gateway(name="Broken", port=55002, state="fatal")
    lines = run("list").splitlines()
    assert lines[1].split()[-1] == "fatal" and lines[1].startswith("Broken")
    assert lines[2].split()[-1] == "running" and lines[2].startswith("PyGate")


@pytest.mark.django_db
def test_a_user_without_a_role_cannot_read_the_status(make_user):
    make_user("nobody", None)
    make_gateway()
    with pytest.raises(CommandError, match="Your account has no role"):
        run("--user", "nobody", "status", "PyGate")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["start", "stop"])
def test_a_viewer_is_refused_with_a_clear_message_and_exit_code_1(viewer, action):
    make_gateway()
    result = subprocess.run(
        [sys.executable, "manage.py", "gateway", "--user", "vera", action, "PyGate", "--wait"],
        check=False, env=worker_env(), cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "Only an Operator or an Administrator may start and stop gateways" in result.stderr
    assert "Traceback" not in result.stderr
    assert Gateway.objects.get().intent == ""
