"""The keeper: one small detached process per managed server (like podman's conmon).

Run as ``python -m portal.process.keeper RUN_DIR [--adopt] [--trigger T]``; callers use
:func:`launch` / :func:`adopt` instead of running it by hand.

Why a keeper: a Celery task must never own a child's lifetime (pool processes are
replaced and killed, redelivered tasks start duplicates, a service manager stopping the
worker kills its group). The keeper is started by a double fork into its own session,
so it is nobody's child but init's; it owns the server process, sends its output to a
log file, notices its exit at once, applies the restart policy and records everything
in the run directory, which is the only interface between the keeper and the portal.

Run directory layout (the directory is 0700, files with secrets 0600)::

    RUN_DIR/
      spec.json          the Spec (0600; the only file holding secret values)
      keeper.lock        flock held for the keeper's whole life: one keeper per RUN_DIR
      keeper.pid         {"pid", "create_time", "started_at", "mode"} of the current keeper
      keeper.log         the keeper's own diagnostics (secrets masked)
      status.json        the current truth, replaced atomically (tmp + os.replace)
      events.jsonl       one JSON line per state transition; seq grows across keepers
      stop_request.json  transient: who asked for the stop that the next SIGTERM means
      output.log         the child's stdout+stderr (unless spec.log_file says otherwise),
      output.log.1 ..N   rotated by size with copytruncate
      app.sock           with Spec.listen: the socket the keeper binds (0600) and hands the child
                         by descriptor, kept across restarts (portal.process.listener)

Lifecycle (supervisor's states, see states.py)::

    stopped --launch--> starting --probe answers--> running --exit--> exited
                          |                            |                 | policy says restart
                          | exits early / not ready    | SIGTERM         v
                          v in init_timeout            v              (delay) starting ...
                        backoff --delay--> starting  stopping --> stopped (keeper exits 0)
                          | after max_quick_failures
                          v
                        fatal (keeper exits; a person must start it again)

A start that exits or is not ready within ``init_timeout`` is a failed start: it is
killed, the state goes to backoff and the next attempt waits
``min(backoff_base * 2^(n-1), backoff_max)``; the n-th consecutive failure (or run
shorter than ``quick_secs``) makes it fatal. As in supervisor, failed starts are retried
whatever the restart policy; the policy decides what happens after an exit from running.
A run that was ready but lasted less than ``quick_secs`` counts as a quick failure too;
after ``max_quick_failures`` of those in a row the keeper gives up: exited, then fatal.

SIGTERM to the keeper means "stop": the spec's ``stop_signal`` (SIGTERM unless it says) to
the child's process group (and to every descendant found with psutil outside it),
``stop_timeout`` seconds of grace, then SIGKILL to all of them; then state stopped and the
keeper exits 0.

If the keeper itself is killed, the child lives on (its output goes to a file, not to
a pipe the keeper reads). ``--adopt`` starts a new keeper that takes over that child
(verified by pid and create_time), watching it by polling since it is not our child
(so its exit code cannot be known).

This module is the public API the portal calls; the parts live by purpose in
``rundir`` (files and locks), ``journal`` (status.json, events.jsonl), ``probes``,
``supervisor`` (the loop) and ``daemon`` (the keeper process's entry point). The names
callers use are re-exported here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.process import identity
from portal.process.child import describe_exit, signal_name
from portal.process.daemon import RC_BUSY, RC_OK, main
from portal.process.identity import ProcessIdentity
from portal.process.journal import Journal, read_events, read_status, reconcile, reconcile_locked
from portal.process.probes import probe_once
from portal.process.rundir import (
    DEFAULT_OUTPUT_LOG,
    EVENTS_FILE,
    KEEPER_LOG,
    LOCK_FILE,
    PID_FILE,
    SPEC_FILE,
    STATUS_FILE,
    STOP_REQUEST_FILE,
    child_identity,
    keeper_alive,
    lock_unless_keeper,
    log_file_of,
    mkdir_private,
    read_keeper_identity,
    read_spec,
    unlock,
    write_atomic,
    write_spec,
)
from portal.process.spec import Spec, inherited_env
from portal.process.states import DOWN, STOPPED, State, is_active
from portal.process.supervisor import Keeper

__all__ = [
    "DEFAULT_OUTPUT_LOG", "EVENTS_FILE", "KEEPER_LOG", "LOCK_FILE", "PID_FILE", "SPEC_FILE", "STATUS_FILE",
    "STOP_REQUEST_FILE", "AlreadyRunning", "Journal", "Keeper", "KeeperBusy", "KeeperError", "KeeperInfo",
    "LaunchError", "adopt", "child_identity", "describe_exit", "keeper_alive", "launch", "log_file_of", "main",
    "probe_once", "read_events", "read_keeper_identity", "read_spec", "read_status", "reconcile",
    "request_stop", "signal_name", "wait_for", "write_spec",
]

# The project root, so that ``python -m portal.process.keeper`` finds the package
# without touching PYTHONPATH (which the child would inherit).
_PROJECT_ROOT = Path(__file__).resolve().parents[2]

class KeeperError(Exception):
    """Base class of the errors of this module; the message is meant for operators."""


class KeeperBusy(KeeperError):
    """Another keeper holds RUN_DIR/keeper.lock."""


class AlreadyRunning(KeeperError):
    """The process of this run dir is alive without a keeper (adopt or stop it)."""


class LaunchError(KeeperError):
    """The keeper could not be started, or had nothing to adopt."""


@dataclass(frozen=True)
class KeeperInfo:
    run_dir: Path
    keeper: ProcessIdentity
    mode: str  # "launch" or "adopt"


def _start_keeper(run_dir: Path, extra: list[str], timeout: float) -> KeeperInfo:
    mode = "adopt" if "--adopt" in extra else "launch"
    try:
        pass_env = read_spec(run_dir).pass_env
    except (OSError, ValueError):
        pass_env = []  # the keeper itself reports the unreadable spec
    out = os.open(run_dir / KEEPER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.process.keeper", str(run_dir), *extra],
            cwd=_PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            close_fds=True, umask=0o077,
            # Not the caller's environment: /proc/PID/environ of the keeper is readable by
            # the same user, and it must hold none of the portal's settings. Secret values
            # for the child come from spec.json (0600), never through the keeper's environ.
            env=inherited_env(dict(os.environ), pass_env),
        )
    finally:
        os.close(out)
    try:
        rc = proc.wait(timeout)  # the intermediate process: exits once the keeper is set up
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise LaunchError(f"the keeper did not start within {timeout:g} s; see {run_dir / KEEPER_LOG}") from None
    if rc == RC_BUSY:
        raise KeeperBusy(f"a keeper is already running for {run_dir}; stop it first")
    if rc != RC_OK:
        from portal.process.logtail import tail

        last = "; ".join(line for line in tail(run_dir / KEEPER_LOG, 3) if "ERROR" in line) or "no details"
        raise LaunchError(f"the keeper could not {mode} ({last}); see {run_dir / KEEPER_LOG}")
    ident = read_keeper_identity(run_dir)
    if ident is None:
        raise LaunchError(f"the keeper started but wrote no {PID_FILE}; see {run_dir / KEEPER_LOG}")
    return KeeperInfo(run_dir=run_dir, keeper=ident, mode=mode)


def _refuse_if_busy(run_dir: Path) -> None:
    fd = lock_unless_keeper(run_dir)
    if fd is None:
        keeper = read_keeper_identity(run_dir)
        who = f" (pid {keeper.pid})" if keeper else ""
        raise KeeperBusy(f"a keeper{who} is already running for {run_dir}; stop it first")
    unlock(fd)


def launch(spec: Spec, run_dir: Path | str, trigger: str = "user", timeout: float = 10.0) -> KeeperInfo:
    """Write ``spec`` to RUN_DIR and start a detached keeper that starts the process.

    Returns once the keeper runs and status.json says ``starting``; then use
    :func:`wait_for` with ``{"running", "fatal", "exited"}``. Raises KeeperBusy when a
    keeper already runs for RUN_DIR, AlreadyRunning when its process is alive without
    a keeper, LaunchError when the keeper could not start.
    """
    run_dir = Path(run_dir).resolve()
    spec.validate()
    mkdir_private(run_dir)
    _refuse_if_busy(run_dir)
    status = read_status(run_dir)
    pid = child_identity(status)
    if status and is_active(status.get("state") or STOPPED) and identity.is_alive(pid):
        assert pid is not None
        raise AlreadyRunning(
            f"{spec.name}: process {pid.pid} is still running without a keeper; adopt it or stop it first")
    write_spec(spec, run_dir)
    try:
        (run_dir / STOP_REQUEST_FILE).unlink()
    except FileNotFoundError:
        pass
    return _start_keeper(run_dir, ["--trigger", trigger], timeout)


def adopt(run_dir: Path | str, timeout: float = 10.0) -> KeeperInfo:
    """Start a keeper that takes over the live process of RUN_DIR whose keeper died."""
    run_dir = Path(run_dir).resolve()
    _refuse_if_busy(run_dir)
    return _start_keeper(run_dir, ["--adopt"], timeout)


def wait_for(run_dir: Path | str, states: Iterable[str], timeout: float, interval: float = 0.015) -> dict[str, Any]:
    """Poll status.json until its state is one of ``states``; returns the last status.

    Also returns early once no keeper runs and the state can no longer change by
    itself. The caller checks ``result["state"]``; ``{}`` means no status at all.
    """
    wanted = {str(State(s).value) for s in states}
    deadline = time.monotonic() + timeout
    next_keeper_check = time.monotonic() + 0.2
    status: dict[str, Any] = {}
    while True:
        status = read_status(run_dir) or {}
        if status.get("state") in wanted:
            return status
        now = time.monotonic()
        if now >= deadline:
            return status
        if now >= next_keeper_check:
            next_keeper_check = now + 0.2
            if not keeper_alive(run_dir):
                status = read_status(run_dir) or {}  # the keeper may have written last words
                if status.get("state") in wanted or not is_active(status.get("state") or STOPPED):
                    return status
        time.sleep(interval)


def request_stop(run_dir: Path | str, timeout: float | None = None, trigger: str = "user") -> bool:
    """Stop the process of RUN_DIR and everything it started.

    With a live keeper: record who asks, send SIGTERM to the keeper (only if the pid
    still is that keeper) and wait. Without one: stop a still-living process directly,
    with the same SIGTERM / stop_timeout / SIGKILL rule, recording the transitions.
    Waits up to ``timeout`` seconds (None: the spec's stop_timeout plus 5 s). Returns
    True when, at the end, nothing runs and the state is settled.
    """
    run_dir = Path(run_dir).resolve()
    try:
        spec = read_spec(run_dir)
    except (OSError, ValueError):
        return read_status(run_dir) is None  # never launched: nothing to stop
    if timeout is None:
        timeout = spec.stop_timeout + 5.0
    deadline = time.monotonic() + timeout
    keeper = read_keeper_identity(run_dir)
    if identity.is_alive(keeper):
        write_atomic(run_dir / STOP_REQUEST_FILE, json.dumps({"trigger": trigger, "time": time.time()}))
        if identity.signal_if_ours(keeper, signal.SIGTERM):
            while time.monotonic() < deadline:
                if not identity.is_alive(keeper):
                    break
                time.sleep(0.01)
            status = read_status(run_dir) or {}
            return not identity.is_alive(keeper) and status.get("state") != State.STOPPING.value
    fd = lock_unless_keeper(run_dir)
    if fd is None:  # a keeper appeared meanwhile; it will see our stop request
        status = wait_for(run_dir, DOWN, max(0.0, deadline - time.monotonic()))
        return status.get("state") in DOWN
    try:
        journal = Journal(run_dir, spec)
        child = child_identity(journal.status)
        if identity.is_alive(child) and is_active(journal.state):
            assert child is not None
            if journal.state is not State.STOPPING:
                journal.transition(State.STOPPING, trigger=trigger,
                                   message="no keeper: stopping the process directly")
            ok = identity.terminate_tree(child, spec.stop_timeout, pgid=child.pid, sig=spec.stop_signum)
            journal.transition(State.STOPPED, trigger=trigger, expected=True,
                               message="stopped without a keeper (exit status unknown)",
                               error=None if ok else "some processes survived SIGKILL")
            return ok
        reconcile_locked(journal, trigger="reconcile")
        if journal.state in (State.EXITED, State.FATAL, State.UNKNOWN):
            journal.transition(State.STOPPED, trigger=trigger, message="marked stopped", error=None)
        return True
    finally:
        unlock(fd)


if __name__ == "__main__":
    sys.exit(main())
