"""Process identity: a pid is only ours together with its creation time.

A stored pid alone is dangerous: after the process exits, the kernel may hand the same
number to an unrelated process, and a Stop button would then kill a stranger. So we
store ``(pid, create_time)`` and only ever look at, or signal, a process whose create
time still matches. A zombie counts as dead (psutil reports zombies as running).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psutil

# create_time comes from the kernel's start time in clock ticks (1/100 s) plus the boot
# time, and is stable across readers; the tolerance only absorbs float formatting.
CREATE_TIME_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    create_time: float

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "create_time": self.create_time}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessIdentity:
        return cls(pid=int(data["pid"]), create_time=float(data["create_time"]))

    @classmethod
    def from_optional(cls, pid: Any, create_time: Any) -> ProcessIdentity | None:
        """Build from two possibly missing fields (e.g. of status.json)."""
        if pid is None or create_time is None:
            return None
        return cls(int(pid), float(create_time))


def identity_of(pid: int) -> ProcessIdentity | None:
    """The identity of a live pid, or None when there is no such process."""
    try:
        return ProcessIdentity(pid, psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def process_if_ours(ident: ProcessIdentity | None) -> psutil.Process | None:
    """The live (non-zombie) psutil process that *is* ``ident``, else None."""
    if ident is None:
        return None
    try:
        proc = psutil.Process(ident.pid)
        if abs(proc.create_time() - ident.create_time) > CREATE_TIME_TOLERANCE:
            return None  # the pid was reused by another process
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def is_alive(ident: ProcessIdentity | None) -> bool:
    """False when gone, a zombie, or when the pid now belongs to another process."""
    return process_if_ours(ident) is not None


def proc_alive(proc: psutil.Process) -> bool:
    """Like :func:`is_alive` for a psutil handle (whose identity psutil checks)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def signal_if_ours(ident: ProcessIdentity | None, sig: int) -> bool:
    """Send ``sig`` only if the pid still is ``ident``; True when it was sent."""
    proc = process_if_ours(ident)
    if proc is None:
        return False
    try:
        # psutil re-checks the create time right before kill(), narrowing the race.
        proc.send_signal(sig)
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def descendants(ident: ProcessIdentity | None) -> list[psutil.Process]:
    """All live descendants of ``ident`` (snapshot; empty when not ours)."""
    proc = process_if_ours(ident)
    if proc is None:
        return []
    try:
        return proc.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def _killpg(pgid: int | None, sig: int) -> None:
    if pgid is None:
        return
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def own_group(ident: ProcessIdentity) -> int | None:
    """The process group to signal: the pid itself when it leads its own group."""
    try:
        return ident.pid if os.getpgid(ident.pid) == ident.pid else None
    except (ProcessLookupError, PermissionError):
        return None


def wait_gone(procs: Iterable[psutil.Process], timeout: float, step: float = 0.01) -> list[psutil.Process]:
    """Poll until every process is dead; returns the survivors at the deadline.

    Polls instead of psutil.wait_procs because wait_procs reaps our own children with
    waitpid(), which would steal the exit status from a thread that is waiting on it.
    """
    alive = [p for p in procs if proc_alive(p)]
    deadline = time.monotonic() + timeout
    while alive and time.monotonic() < deadline:
        time.sleep(step)
        alive = [p for p in alive if proc_alive(p)]
    return alive


def terminate_tree(
    ident: ProcessIdentity | None,
    timeout: float,
    *,
    pgid: int | None = None,
    extra: Iterable[psutil.Process] = (),
    root_gone: Any = None,
    sig: int = signal.SIGTERM,
) -> bool:
    """Stop a process and everything it started: SIGTERM, wait ``timeout``, SIGKILL.

    SIGTERM goes to the process group (``pgid``, by default the root's own group when
    it leads one) and to every descendant outside that group; the descendants are
    snapshotted *before* signalling, since once the root dies they are re-parented and
    can no longer be found through it. ``extra`` adds processes known from earlier
    snapshots (e.g. grandchildren that escaped with setsid). ``root_gone`` is an
    optional callable telling that the root has exited (used by its parent, which must
    reap it itself). ``sig``: what is sent first instead of SIGTERM (a definition's stop signal).
    Returns True when nothing of the tree is left.
    """
    root = process_if_ours(ident)
    if ident is not None and pgid is None and root is not None:
        pgid = own_group(ident)
    tree: dict[int, psutil.Process] = {}
    for proc in ([root] if root else []) + descendants(ident) + list(extra):
        if proc_alive(proc):
            tree[proc.pid] = proc

    def in_group(proc: psutil.Process) -> bool:
        try:
            return pgid is not None and os.getpgid(proc.pid) == pgid
        except (ProcessLookupError, PermissionError):
            return False

    _killpg(pgid, sig)
    for proc in tree.values():
        if not in_group(proc):
            try:
                proc.send_signal(sig)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass

    deadline = time.monotonic() + timeout
    survivors = list(tree.values())
    while time.monotonic() < deadline:
        survivors = [p for p in survivors if proc_alive(p)]
        if not survivors and (root_gone is None or root_gone()):
            break
        time.sleep(0.005)

    # Whatever is left gets SIGKILL, including children born during the grace time.
    late: list[psutil.Process] = []
    for proc in survivors:
        try:
            late.extend(proc.children(recursive=True))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    _killpg(pgid, signal.SIGKILL)
    for proc in survivors + late:
        try:
            proc.send_signal(signal.SIGKILL)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return not wait_gone(survivors + late, timeout=2.0)
