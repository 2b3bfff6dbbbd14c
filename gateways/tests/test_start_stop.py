"""Start and Stop with a real worker, real keepers and real gateway servers."""

import os
import signal
import socket
import threading

import psutil
import pytest
from django.db import connection

from conftest import wait_until
from gateways import runtime
from gateways.models import Gateway
from gateways.tests import pythons
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import (
    activity_to,
    free_port,
    run_persondemo,
    server_processes,
    start_and_wait,
    wait_state,
)
from processes import control
from processes.models import Activity, Run

pytestmark = [pytest.mark.worker]


def test_start_gives_running_and_the_persondemo_works_then_stop_leaves_nothing(gateway_processes, operator):
    port = free_port()
    gateway = make_gateway(port=port)
    gateway = start_and_wait(gateway, operator)
    assert gateway.state == "running", gateway.last_error
    assert psutil.pid_exists(gateway.pid)
    tree = [psutil.Process(gateway.pid), *psutil.Process(gateway.pid).children(recursive=True)]

    result = run_persondemo(port)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Default values: name: Tom, age: 5",
        "Changed values: name: George, age: 99, employer: InterSystems",
    ]

    control.request(gateway, "stop", operator)
    gateway = wait_state(gateway, {"stopped"})
    assert gateway.pid is None
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert server_processes(port) == []
    run = Run.objects.of(gateway).get()
    assert run.outcome == "stopped" and run.requested_by == operator and run.ready_at and run.stopped_at
    trail = list(Activity.objects.of(gateway).order_by("id").values_list("to_state", flat=True))
    assert [s for s in trail if s] == ["starting", "running", "stopping", "stopped"]


def test_kill_9_is_recorded_within_two_seconds_and_restarted(gateway_processes, operator):
    gateway = start_and_wait(make_gateway(port=free_port()), operator)
    first_pid = gateway.pid
    os.kill(first_pid, signal.SIGKILL)

    def recorded() -> Activity | None:
        return activity_to(gateway, "exited", pid=first_pid, signal="SIGKILL")

    event = wait_until(recorded, timeout=2.0, message="the SIGKILL was not recorded within 2 s")
    assert event.expected is False and event.level == "error"
    gateway = wait_state(gateway, {"running"})
    assert gateway.pid != first_pid
    restart = Run.objects.of(gateway).filter(pid=gateway.pid).get()
    assert restart.trigger == "auto-restart"
    assert Run.objects.of(gateway).get(pid=first_pid).signal == "SIGKILL"


def test_a_server_that_exits_at_once_goes_backoff_then_fatal(gateway_processes, operator):
    gateway = make_gateway(port=free_port(), python_options="-c 'import sys; sys.exit(3)'")
    gateway = start_and_wait(gateway, operator, timeout=30)
    gateway = wait_state(gateway, {"fatal"}, timeout=30)
    states = list(Activity.objects.of(gateway).exclude(to_state="").order_by("id")
                  .values_list("to_state", flat=True))
    assert states.count("backoff") == 3 and states[-1] == "fatal"
    assert "exit code 3" in gateway.last_error
    assert server_processes(gateway.port) == []


IGNORES_SIGTERM = (
    "-c 'import runpy, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "signal.signal = lambda *a, **k: None; sys.argv = [\"gateways.server\"] + sys.argv[3:]; "
    "runpy.run_module(\"gateways.server\", run_name=\"__main__\")'"
)


def test_a_server_that_ignores_sigterm_is_killed_after_the_stop_timeout(gateway_processes, operator):
    gateway = make_gateway(port=free_port(), python_options=IGNORES_SIGTERM, stop_timeout=1)
    gateway = start_and_wait(gateway, operator)
    assert gateway.state == "running", gateway.last_error
    pid = gateway.pid
    control.request(gateway, "stop", operator)
    gateway = wait_state(gateway, {"stopped"})
    stopped = activity_to(gateway, "stopped")
    assert stopped.signal == "SIGKILL"
    assert "did not stop within 1 s" in stopped.message
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_twenty_concurrent_starts_give_one_process(gateway_processes, operator):
    gateway = make_gateway(port=free_port())
    barrier = threading.Barrier(20)

    def click() -> None:
        barrier.wait()
        try:
            control.request(Gateway.objects.get(pk=gateway.pk), "start", operator)
        finally:
            # Each thread has its own connection: an open one keeps PostgreSQL from dropping
            # the test database at the end of the session.
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gateway = wait_state(gateway, {"running"})
    wait_until(lambda: not Gateway.objects.get(pk=gateway.pk).intent, timeout=20)
    assert len(server_processes(gateway.port)) == 1
    assert Run.objects.of(gateway).count() == 1
    assert Activity.objects.of(gateway).filter(message="Start requested").count() == 20


def test_a_held_port_gives_a_message_naming_its_holder(gateway_processes, operator):
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        gateway = make_gateway(port=port)
        control.request(gateway, "start", operator)
        wait_until(lambda: Gateway.objects.get(pk=gateway.pk).last_error, timeout=15)
        gateway.refresh_from_db()
        assert f"pid {os.getpid()}" in gateway.last_error
        assert gateway.state == "stopped"
        refused = Activity.objects.of(gateway).filter(level="error").get()
        assert str(port) in refused.message and f"pid {os.getpid()}" in refused.message
    finally:
        holder.close()


def test_a_missing_python_is_refused_before_anything_runs(gateway_processes, operator):
    gateway = make_gateway(port=free_port(), python_executable="/no/such/python3")
    control.request(gateway, "start", operator)
    wait_until(lambda: Gateway.objects.get(pk=gateway.pk).last_error, timeout=15)
    gateway.refresh_from_db()
    assert "/no/such/python3 does not exist" in gateway.last_error
    assert not Run.objects.exists()


def test_an_interpreter_without_msgpack_names_the_install_command(gateway_processes, operator, tmp_path):
    old = pythons.without_msgpack(tmp_path)
    gateway = make_gateway(port=free_port(), python_executable=old)
    control.request(gateway, "start", operator)
    wait_until(lambda: Gateway.objects.get(pk=gateway.pk).last_error, timeout=15)
    gateway.refresh_from_db()
    assert f"{old} -m pip install msgpack" in gateway.last_error
    assert gateway.startup["fix_argv"] == [old, "-m", "pip", "install", "msgpack"]


def test_the_passphrase_is_absent_from_argv_log_activity_and_html(gateway_processes, administrator, admin_client_):
    passphrase = "never-show-this-1"
    admin_client_.post("/gateways/new/", {
        "type": "python", "name": "Secret", "server": "127.0.0.1", "port": str(free_port()),
        "use_passphrase": "on", "passphrase": passphrase, "connection_timeout": "5", "init_timeout": "5",
        "restart_policy": "on-failure", "stop_timeout": "5",
    })
    gateway = start_and_wait(Gateway.objects.get(name="Secret"), administrator)
    assert gateway.state == "running", gateway.last_error
    assert run_persondemo(gateway.port, passphrase).returncode == 0
    verifier = gateway.passphrase_verifier
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        assert passphrase not in line and verifier not in line
    log = runtime.log_path(gateway).read_text()
    assert passphrase not in log and verifier not in log
    for row in Activity.objects.all():
        assert passphrase not in str(row.as_row()) and verifier not in str(row.as_row())
    for url in ("/gateways/", "/gateways/Secret/", "/gateways/Secret/live/", "/gateways/Secret/activity/", "/activity/"):
        html = admin_client_.get(url).content.decode()
        assert passphrase not in html and verifier not in html and "pbkdf2" not in html
    assert "GATEWAY_PASSPHRASE=****" in gateway.startup["command"]
