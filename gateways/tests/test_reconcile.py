"""What survives a worker's death, a keeper's death and pid reuse; and two hosts.

Two hosts cannot run on one machine, so they are simulated by workers with
different PORTAL_HOST_NAME values serving their own per-host queues; the
gateways themselves listen on 127.0.0.1.
"""

import os
import signal
import subprocess
import sys

import psutil
import pytest

from conftest import start_worker, stop_worker, wait_until
from gateways import runtime
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import activity_to, free_port, server_processes, wait_state
from portal import paths
from portal.process import keeper
from processes import control
from processes.models import Activity, Run
from processes.watcher import reconcile_local

pytestmark = [pytest.mark.worker]


def worker_for(host: str):  # type: ignore[no-untyped-def]
    from portal.celery import app

    process = start_worker(host, paths.VAR_DIR / f"worker-{host}.log")
    node = f"test@{host}"
    wait_until(lambda: node in (app.control.inspect(destination=[node], timeout=0.5).ping() or {}),
               timeout=60, interval=0.2, message=f"worker {node} did not answer")
    return process


def kill_worker(process: subprocess.Popen) -> None:
    """kill -9 the worker and its pool: what a crash or an OOM kill does."""
    tree = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for child in tree:
        try:
            child.kill()
        except psutil.Error:
            pass


def test_a_killed_and_restarted_worker_leaves_the_gateway_running_and_readopted(
    gateway_processes, operator, settings
):
    settings.PORTAL_HOST_NAME = "hostb"
    worker = worker_for("hostb")
    try:
        gateway = make_gateway(port=free_port())
        control.request(gateway, "start", operator)
        gateway = wait_state(gateway, {"running"})
        assert gateway.run_host == "hostb"
        pid = gateway.pid
    finally:
        kill_worker(worker)

    # No worker at all: the keeper still keeps the server.
    assert psutil.pid_exists(pid) and len(server_processes(gateway.port)) == 1

    worker = worker_for("hostb")
    try:
        gateway.refresh_from_db()
        assert gateway.state == "running" and gateway.pid == pid
        # The new worker follows the old keeper: a kill -9 is seen and the restart recorded.
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: activity_to(gateway, "exited", pid=pid), timeout=2.0)
        gateway = wait_state(gateway, {"running"})
        assert gateway.pid != pid
        control.request(gateway, "stop", operator)
        wait_state(gateway, {"stopped"})
    finally:
        stop_worker(worker)


def test_a_keeper_killed_with_sigkill_is_replaced_and_its_server_adopted(gateway_processes, operator):
    gateway = make_gateway(port=free_port())
    control.request(gateway, "start", operator)
    gateway = wait_state(gateway, {"running"})
    run_dir = runtime.run_dir(gateway)
    old_keeper = keeper.read_keeper_identity(run_dir)
    os.kill(old_keeper.pid, signal.SIGKILL)
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=5)

    counts = reconcile_local(gateway.run_host)
    # This reconcile adopts it, unless the worker's own (sent on its schedule) came first: either
    # way one new keeper, and the Activity says who.
    adopted = Activity.objects.of(gateway).filter(trigger="reconcile", message__startswith="Re-adopted")
    assert counts["adopted"] == 1 or (counts["adopted"] == 0 and adopted.count() == 1)
    assert keeper.keeper_alive(run_dir)
    assert keeper.read_keeper_identity(run_dir).pid != old_keeper.pid
    gateway.refresh_from_db()
    assert gateway.state == "running" and psutil.pid_exists(gateway.pid)
    assert Activity.objects.of(gateway).filter(trigger="reconcile", message__startswith="Re-adopted").exists()
    control.request(gateway, "stop", operator)
    wait_state(gateway, {"stopped"})
    assert server_processes(gateway.port) == []


# An unrelated process: it says when it is ready, and answers SIGUSR2 as long as it lives. Every
# other signal keeps its default action (SIGINT too, which Python would turn into an exception).
STRANGER = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "signal.signal(signal.SIGUSR2, lambda *_: print('still here', flush=True))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_reused_pid_is_never_signalled(gateway_processes, operator):
    gateway = make_gateway(port=free_port())
    control.request(gateway, "start", operator)
    gateway = wait_state(gateway, {"running"})
    run_dir = runtime.run_dir(gateway)
    # The server and its keeper die unseen, and an unrelated process takes the pid's place.
    keeper_ident = keeper.read_keeper_identity(run_dir)
    os.kill(keeper_ident.pid, signal.SIGKILL)
    os.kill(gateway.pid, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(gateway.pid) or
               psutil.Process(gateway.pid).status() == psutil.STATUS_ZOMBIE, timeout=5)
    stranger = subprocess.Popen([sys.executable, "-c", STRANGER], stdout=subprocess.PIPE, text=True)
    assert stranger.stdout is not None and stranger.stdout.readline() == "ready\n"
    try:
        status = keeper.read_status(run_dir)
        status["pid"] = stranger.pid  # same pid as far as the journal knows, another create_time
        (run_dir / "status.json").write_text(__import__("json").dumps(status))
        Gateway.objects.filter(pk=gateway.pk).update(restart_policy="never")
        reconcile_local(gateway.run_host)
        # A signal that ends a process takes effect as it is sent, so one sent by the reconciliation
        # would leave this one unanswered: the stranger answers it only if it is still there.
        stranger.send_signal(signal.SIGUSR2)
        assert stranger.stdout.readline() == "still here\n", "a process that is not ours was signalled"
        gateway.refresh_from_db()
        assert gateway.state == "exited"
    finally:
        stranger.kill()
        stranger.wait()
        stranger.stdout.close()


def test_two_hosts_each_start_their_own_gateways(gateway_processes, operator, settings):
    alpha, beta = worker_for("alpha"), worker_for("beta")
    try:
        settings.PORTAL_HOST_NAME = "alpha"
        on_alpha = make_gateway(name="OnAlpha", port=free_port())
        control.request(on_alpha, "start", operator)
        settings.PORTAL_HOST_NAME = "beta"
        on_beta = make_gateway(name="OnBeta", port=free_port())
        control.request(on_beta, "start", operator)
        on_alpha, on_beta = wait_state(on_alpha, {"running"}), wait_state(on_beta, {"running"})
        assert on_alpha.run_host == "alpha" and on_beta.run_host == "beta"
        assert activity_to(on_alpha, "running").host == "alpha" and Run.objects.of(on_alpha).get().host == "alpha"
        assert Run.objects.of(on_beta).get().host == "beta"
        settings.PORTAL_HOST_NAME = "alpha"
        control.request(on_alpha, "stop", operator)
        settings.PORTAL_HOST_NAME = "beta"
        control.request(on_beta, "stop", operator)
        wait_state(on_alpha, {"stopped"})
        wait_state(on_beta, {"stopped"})
    finally:
        stop_worker(alpha)
        stop_worker(beta)


def test_the_routine_reconcile_does_not_flood_the_workers_log(gateway_processes):
    """A reconcile every 5 s from beat: its INFO lines are dropped, other tasks' kept."""
    from processes.tasks import install_requirements, reconcile_host

    log = paths.VAR_DIR / "worker.log"
    before = log.stat().st_size
    host = paths.this_host()
    from portal.queues import host_queue

    reconcile_host.apply_async(args=[host], queue=host_queue(host)).forget()
    install_requirements.apply_async(args=["gateway", 0], queue=host_queue(host))  # a row that does not exist

    def logged() -> str:
        with open(log, errors="replace") as f:
            f.seek(before)
            text = f.read()
        return text if "install_requirements" in text and "succeeded" in text else ""

    text = wait_until(logged, timeout=20, message="the worker did not log the other task")
    assert "reconcile_host" not in text
