"""An idle keeper sleeps: no timer wakes it twice a second; the events it waits for still wake it at once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from portal.process import keeper
from portal.process.spec import Spec
from portal.process.tests.conftest import processes_mentioning, server_argv, wait_until

# Housekeeping backs off from 0.5 s, doubling while nothing changes: idle within 0.5+1+2+4 s.
SETTLE = 8.0
WINDOW = 10.0
# Twice a second before: 20 in the window (200 for an adopted process, polled every 0.05 s).
# Now about one every 5 s (supervisor.IDLE_HOUSEKEEPING_INTERVAL), with slack for a busy machine.
MAX_WAKEUPS = 6


def wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid``: each is a sleep that ended."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches:"))
    return total


def wakeups_over(pid: int, seconds: float) -> int:
    before = wakeups(pid)
    time.sleep(seconds)  # the measured window itself: nothing to poll for
    return wakeups(pid) - before


def spec(port: int, tag: str) -> Spec:
    return Spec(name="idle", argv=server_argv(port, tag), probe={"kind": "tcp", "host": "127.0.0.1", "port": port},
                stop_timeout=2.0, quick_secs=0.0)


def test_an_idle_keeper_wakes_only_every_few_seconds(run_dir: Path, port: int, tag: str) -> None:
    info = keeper.launch(spec(port, tag), run_dir)
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["state"] == "running"
    time.sleep(SETTLE)  # the backoff of the housekeeping's interval, not a wait for a condition
    woke = wakeups_over(info.keeper.pid, WINDOW)
    assert woke <= MAX_WAKEUPS, woke


def test_an_idle_keeper_still_sees_its_process_killed_at_once(run_dir: Path, port: int, tag: str) -> None:
    keeper.launch(spec(port, tag), run_dir)
    running = keeper.wait_for(run_dir, {"running"}, timeout=10)
    time.sleep(SETTLE)
    seq = keeper.read_events(run_dir)[-1]["seq"]
    killed = time.monotonic()
    os.kill(running["pid"], signal.SIGKILL)
    exited = wait_until(lambda: next((e for e in keeper.read_events(run_dir, after_seq=seq)
                                      if e["to"] == "exited"), None), timeout=2)
    assert exited["signal"] == "SIGKILL"
    assert time.monotonic() - killed < 1.0
    again = wait_until(lambda: (s := keeper.read_status(run_dir))["state"] == "running"
                       and s["pid"] != running["pid"] and s, timeout=10)
    assert again["restarts"] == 1


def test_an_idle_keeper_stops_at_once(run_dir: Path, port: int, tag: str) -> None:
    keeper.launch(spec(port, tag), run_dir)
    keeper.wait_for(run_dir, {"running"}, timeout=10)
    time.sleep(SETTLE)
    started = time.monotonic()
    assert keeper.request_stop(run_dir, timeout=10)
    assert time.monotonic() - started < 1.5
    assert keeper.read_status(run_dir)["state"] == "stopped"
    assert processes_mentioning(tag) == []


def test_an_adopted_process_is_watched_through_its_pidfd_not_polled(run_dir: Path, port: int, tag: str) -> None:
    info = keeper.launch(spec(port, tag), run_dir)
    running = keeper.wait_for(run_dir, {"running"}, timeout=10)
    os.kill(info.keeper.pid, signal.SIGKILL)
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=5)
    adopted = keeper.adopt(run_dir)
    time.sleep(SETTLE)
    woke = wakeups_over(adopted.keeper.pid, WINDOW)
    assert woke <= MAX_WAKEUPS, woke
    seq = keeper.read_events(run_dir)[-1]["seq"]
    killed = time.monotonic()
    os.kill(running["pid"], signal.SIGKILL)
    exited = wait_until(lambda: next((e for e in keeper.read_events(run_dir, after_seq=seq)
                                      if e["to"] == "exited"), None), timeout=2)
    assert "exit status unknown" in exited["message"]
    assert time.monotonic() - killed < 1.0
    assert keeper.request_stop(run_dir, timeout=10)
