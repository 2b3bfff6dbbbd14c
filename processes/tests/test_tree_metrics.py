"""The live figures of a process are its whole tree's: a master that forks workers (as gunicorn
does) sleeps while its workers burn CPU, hold memory and connections; the figures sum them."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from conftest import wait_until
from gateways.tests.factories import make_gateway
from portal.process.states import RUNNING
from processes.watcher import TreeSampler, Watcher, read_metrics

WORKERS = 2
# CPU shares: the suite may run beside others on a 2-core machine, so the floor is low; a master
# measured alone (what the watcher did before) reads 0 %.
# The master sleeps; each worker (a fork, as gunicorn's) holds 30 MB, one thread more,
# one connection to the test's listener, and spins.
MASTER = textwrap.dedent("""
    import os, socket, sys, threading, time
    port = int(sys.argv[1])
    for _ in range({workers}):
        if os.fork() == 0:
            ballast = bytearray(30 * 1024 * 1024)
            ballast[::4096] = b"x" * len(ballast[::4096])
            conn = socket.create_connection(("127.0.0.1", port))
            threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
            while True:
                pass
    print("forked", flush=True)
    time.sleep(600)
""").format(workers=WORKERS)


@pytest.fixture
def forking_master():  # type: ignore[no-untyped-def]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", MASTER, str(port)], stdout=subprocess.PIPE, text=True)
    accepted = []
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "forked"
        listener.settimeout(10)
        accepted = [listener.accept()[0] for _ in range(WORKERS)]
        master = psutil.Process(proc.pid)
        wait_until(lambda: len(master.children()) == WORKERS, timeout=10)
        yield master
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
        for conn in accepted:
            conn.close()
        listener.close()


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def burnt(before: float, processes: list[psutil.Process]) -> None:
    """Until the workers have used half a second of CPU since ``before`` (a quarter of a second of
    wall time on an idle machine, longer on a loaded one): enough to be measured at the kernel's
    10 ms ticks, whatever the load."""
    wait_until(lambda: _cpu_seconds(processes) - before >= 0.5, timeout=30, interval=0.05)


def test_the_sample_sums_cpu_memory_threads_and_connections_over_the_workers(forking_master) -> None:
    master = forking_master
    workers = master.children(recursive=True)
    sampler = TreeSampler()
    before, started = _cpu_seconds([master, *workers]), time.monotonic()
    sampler.sample(master.pid, master.create_time())  # CPU is measured between two samples
    burnt(before, [master, *workers])
    tree = sampler.sample(master.pid, master.create_time())
    # A share of the time that really passed: on a loaded machine the second can last two.
    used = (_cpu_seconds([master, *workers]) - before) / (time.monotonic() - started)
    assert tree is not None
    assert tree["processes"] == 1 + WORKERS
    # The master alone: asleep, no connection, one thread, little memory.
    alone = master.memory_info().rss
    assert master.cpu_percent(0.5) < 5
    # The tree: the spinning workers' CPU (what they really got on a machine shared with other
    # test runs, read from the kernel over the same second), their memory, threads, connections.
    assert tree["cpu"] > 0.5 * used * 100 > 1
    assert tree["rss"] >= alone + WORKERS * 30 * 1024 * 1024
    assert tree["threads"] == master.num_threads() + sum(w.num_threads() for w in workers)
    assert tree["threads"] >= 1 + 2 * WORKERS
    assert tree["connections"] == WORKERS


@pytest.mark.django_db
def test_the_watcher_writes_the_trees_figures_for_the_detail_page(forking_master, redis_service) -> None:
    master = forking_master
    gateway = make_gateway(state=RUNNING, pid=master.pid, pid_create_time=master.create_time(), run_host="alpha")
    watcher = Watcher("alpha")
    watcher.refresh_list()
    tree = [master, *master.children(recursive=True)]
    before, started = _cpu_seconds(tree), time.monotonic()
    watcher.collect_metrics()
    burnt(before, tree)
    watcher.collect_metrics()
    used = (_cpu_seconds(tree) - before) / (time.monotonic() - started)
    samples = read_metrics("gateway", gateway.pk)
    assert len(samples) == 2
    assert samples[-1]["processes"] == 1 + WORKERS
    assert samples[-1]["connections"] == WORKERS
    assert samples[-1]["cpu"] > 0.5 * used * 100 > 1
