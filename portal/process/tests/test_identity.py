import os
import signal
import subprocess
import sys

import psutil

from portal.process.identity import (
    ProcessIdentity,
    identity_of,
    is_alive,
    signal_if_ours,
    terminate_tree,
)
from portal.process.tests.conftest import wait_until


def sleeper(tag: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", tag, *extra])


def test_an_identity_round_trips_through_a_dict():
    ident = identity_of(os.getpid())
    assert ident is not None
    assert ProcessIdentity.from_dict(ident.to_dict()) == ident
    assert is_alive(ident)


def test_a_reused_pid_is_not_ours_and_is_not_signalled(tag):
    proc = sleeper(tag)
    try:
        real = identity_of(proc.pid)
        assert real is not None
        stale = ProcessIdentity(proc.pid, real.create_time - 1000.0)  # the pid once was someone else
        assert not is_alive(stale)
        assert not signal_if_ours(stale, signal.SIGKILL)
        assert proc.poll() is None and psutil.Process(proc.pid).is_running()
        assert signal_if_ours(real, signal.SIGKILL)
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_a_zombie_counts_as_dead(tag):
    proc = subprocess.Popen([sys.executable, "-c", "pass", tag])
    ident = identity_of(proc.pid)
    assert ident is not None
    wait_until(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE, 5)
    assert not is_alive(ident)
    assert not signal_if_ours(ident, signal.SIGTERM)
    proc.wait()
    assert not is_alive(ident)
    assert identity_of(proc.pid) is None or identity_of(proc.pid) != ident


def test_terminating_a_tree_leaves_no_grandchild(tag):
    code = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[1]])\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[1]],"
            " start_new_session=True)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, tag], start_new_session=True, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        ident = identity_of(proc.pid)
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        assert len(tree) == 3
        # Reap the root as its parent does, while terminate_tree watches the rest.
        assert terminate_tree(ident, timeout=2.0, root_gone=lambda: proc.poll() is not None)
        assert proc.wait(2) == -signal.SIGTERM
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree)
    finally:
        proc.kill()
        proc.wait()
