"""What the watcher's once-a-second sample costs: one read of the process table per pass, TCP
connections counted only for the kinds that show them, one sampler per host."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from conftest import wait_until
from portal.process.states import RUNNING
from processes import control
from processes.tests.test_tree_metrics import WORKERS, forking_master  # noqa: F401  (a fixture)
from processes.watcher import TreeSampler, Watcher, metrics_key, read_metrics
from programs.tests.conftest import make_program, program_processes, wait_state  # noqa: F401  (fixtures)
from webapps.models import WebApp


def read_calls() -> int:
    """read() system calls of this process so far (/proc/self/io syscr)."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("syscr:"))


@pytest.fixture
def counted_net_connections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids whose connections were listed: psutil's own method, called through and counted."""
    calls: list[int] = []
    original = psutil.Process.net_connections

    def counting(self: psutil.Process, kind: str = "inet") -> list:
        calls.append(self.pid)
        return original(self, kind)

    monkeypatch.setattr(psutil.Process, "net_connections", counting)
    return calls


@pytest.fixture
def metrics_cleared(redis_service):  # type: ignore[no-untyped-def]
    """The figures a test wrote go with it: a later test's row may get the same primary key."""
    from portal.health import redis_client

    yield
    client = redis_client(1.0)
    for key in client.scan_iter("portal:metrics:*"):
        client.delete(key)


@pytest.mark.django_db
def test_a_web_applications_tree_is_sampled_without_listing_its_connections(
        forking_master, metrics_cleared, counted_net_connections) -> None:  # noqa: F811
    master = forking_master
    webapp = WebApp.objects.create(name="/idle", directory="/srv/idle", module="idle.wsgi", state=RUNNING,
                                   python_executable="/usr/bin/python3", pid=master.pid,
                                   pid_create_time=master.create_time(), run_host="alpha")
    watcher = Watcher("alpha")
    watcher.refresh_list()
    watcher.collect_metrics()
    watcher.collect_metrics()
    samples = read_metrics("webapp", webapp.pk)
    assert len(samples) == 2
    # Its whole tree is measured: the master and its workers, their memory and threads ...
    assert samples[-1]["processes"] == 1 + WORKERS
    assert samples[-1]["rss"] >= WORKERS * 30 * 1024 * 1024
    assert samples[-1]["threads"] >= 1 + 2 * WORKERS
    # ... but its connections (which its pages do not show) were never listed.
    assert samples[-1]["connections"] is None
    assert counted_net_connections == []


@pytest.mark.django_db
def test_a_gateways_tree_still_has_its_connections_counted(
        forking_master, metrics_cleared, counted_net_connections) -> None:  # noqa: F811
    from gateways.tests.factories import make_gateway

    master = forking_master
    gateway = make_gateway(state=RUNNING, pid=master.pid, pid_create_time=master.create_time(), run_host="alpha")
    watcher = Watcher("alpha")
    watcher.refresh_list()
    watcher.collect_metrics()
    assert read_metrics("gateway", gateway.pk)[-1]["connections"] == WORKERS
    assert set(counted_net_connections) == {master.pid, *(p.pid for p in master.children(recursive=True))}


def test_a_sample_within_a_pass_reads_nothing_more(forking_master) -> None:  # noqa: F811
    master = forking_master
    sampler = TreeSampler()
    sampler.snapshot()  # the one read of the process table
    calibrate = read_calls()
    calibrate = read_calls() - calibrate  # what reading the counter itself costs
    before = read_calls()
    for _ in range(10):
        tree = sampler.sample(master.pid, master.create_time(), connections=False)
    # Not one read per sample (psutil read the host's whole process table again for each tree);
    # the slack is for a read by another thread of this process meanwhile.
    assert read_calls() - before - calibrate < 10
    assert tree is not None and tree["processes"] == 1 + WORKERS


def test_a_reused_pid_is_not_sampled(forking_master) -> None:  # noqa: F811
    master = forking_master
    assert TreeSampler().sample(master.pid, master.create_time() - 5) is None
    assert TreeSampler().sample(os.getpid(), psutil.Process().create_time()) is not None


def test_only_the_host_queues_worker_samples_not_the_build_worker(program_processes, operator) -> None:  # noqa: F811
    """Both workers follow the states; one writes the figures: one sample a second, not two."""
    from portal.health import redis_client

    program = make_program(name="sampled", command="/bin/sleep 300", init_timeout="1")
    control.request(program, "start", operator)
    program = wait_state(program, {"running"}, timeout=30)
    key = metrics_key("program", program.pk)
    wait_until(lambda: read_metrics("program", program.pk), timeout=5, message="no figures were sampled")
    redis_client(1.0).delete(key)
    started = time.time()
    time.sleep(4.0)  # the window measured: samples written in it are counted
    ended = time.time()
    times = [s["t"] for s in read_metrics("program", program.pk) if started <= s["t"] <= ended]
    # One sampler: 4 or 5 samples in 4 s; two (the build worker sampling too) would write 8 or more.
    assert 3 <= len(times) <= 5, times
    control.request(program, "stop", operator)
    wait_state(program, {"stopped"})
