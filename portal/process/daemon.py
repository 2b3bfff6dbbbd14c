"""The keeper process itself: ``python -m portal.process.keeper RUN_DIR [--adopt]``.

Detaches (double fork, own session), takes RUN_DIR/keeper.lock, then launches or
adopts the process and runs the :class:`~portal.process.supervisor.Keeper` loop until
it ends. Callers use ``keeper.launch`` / ``keeper.adopt`` rather than running it by hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from portal.process import identity
from portal.process.child import Child
from portal.process.journal import reconcile_locked
from portal.process.rundir import KEEPER_LOG, LOCK_FILE, SPEC_FILE, child_identity, read_spec, try_lock, unlock
from portal.process.spec import Spec
from portal.process.states import State, is_active
from portal.process.supervisor import Keeper

# Exit codes of the keeper's first (intermediate) process, read by keeper.launch().
RC_OK, RC_BUSY, RC_ERROR = 0, 3, 4

log = logging.getLogger("portal.process.keeper")


def _setup_logging(spec: Spec | None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s keeper[{os.getpid()}] %(levelname)s %(message)s"))
    if spec is not None:
        redact = spec.redact

        class _Redact(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record.msg = redact(record.getMessage())
                record.args = ()
                return True

        handler.addFilter(_Redact())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _redirect_stdio(run_dir: Path) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    out = os.open(run_dir / KEEPER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)


def _daemonize() -> Callable[[bytes], None]:
    """Fork; the first process waits for the second's word, then exits with it.

    The first process is the one launch() started with Popen: it exits as soon as the
    keeper (the second) has its own session and lock, so launch() reaps it at once
    and no zombie stays with the caller, and the keeper is re-parented to init.
    Returns the function the keeper calls once with b"ok", b"busy" or b"error: ...".
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"ok"):
            os._exit(RC_OK)
        if data.startswith(b"busy"):
            os._exit(RC_BUSY)
        os._exit(RC_ERROR)
    os.close(r)
    os.setsid()

    def report(word: bytes) -> None:
        nonlocal w
        if w >= 0:
            try:
                os.write(w, word)
            finally:
                os.close(w)
                w = -1

    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m portal.process.keeper",
                                     description="Keep one server process alive (see portal.process.keeper).")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--adopt", action="store_true", help="take over a child whose keeper died")
    parser.add_argument("--trigger", default="user", help="who asked for this start (recorded in events)")
    parser.add_argument("--foreground", action="store_true", help="no fork (debugging)")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    # First: everything the keeper and its child create is private (0600/0700).
    os.umask(0o077)

    def report(word: bytes) -> None:
        return None
    if not args.foreground:
        report = _daemonize()
        _redirect_stdio(run_dir)
    try:
        spec = read_spec(run_dir)
    except (OSError, ValueError) as exc:
        _setup_logging(None)
        log.error("cannot read %s: %s", run_dir / SPEC_FILE, exc)
        report(f"error: cannot read spec: {exc}".encode())
        return 2
    _setup_logging(spec)

    lock_fd = try_lock(run_dir)
    if lock_fd is None:
        log.error("another keeper holds %s; exiting", run_dir / LOCK_FILE)
        report(b"busy")
        return 3
    try:
        keeper = Keeper(run_dir, spec, trigger=args.trigger)
        keeper.install_signals()
        mode = "adopt" if args.adopt else "launch"
        me = keeper.write_pid_file(mode)
        log.info("keeper %s started (%s) for %s", me.pid, mode, run_dir)
        journal = keeper.journal
        previous = child_identity(journal.status)
        alive = identity.is_alive(previous)

        if args.adopt:
            if not alive or not is_active(journal.state):
                reconcile_locked(journal)
                journal.write_status()
                msg = f"nothing to adopt: process {previous.pid if previous else '-'} is not alive"
                log.error("%s", msg)
                report(f"error: {msg}".encode())
                return 5
            assert previous is not None
            started = float(journal.status.get("run_started_at") or time.time())
            child = Child(previous, started, None, keeper.wake)
            keeper.child = child
            journal.update(adopted=True, error=None)
            if journal.state is State.STOPPING:
                report(b"ok")
                return keeper.stop(child, "keeper")
            if journal.state not in (State.STARTING, State.RUNNING):
                journal.transition(State.UNKNOWN, trigger="keeper", message="adopting a live process")
                journal.transition(State.STARTING, trigger="keeper", message="adopted")
            log.info("adopted pid %s (state %s)", previous.pid, journal.state.value)
            report(b"ok")
            return keeper.run(adopted=child)

        if alive and is_active(journal.state):
            msg = (f"process {previous.pid if previous else '-'} of this run dir is still alive without a "
                   f"keeper; adopt it or stop it first")
            log.error("%s", msg)
            report(f"error: {msg}".encode())
            return 5
        reconcile_locked(journal)
        journal.transition(
            State.STARTING, trigger=args.trigger, message=spec.display_command(), error=None,
            pid=None, create_time=None, run_started_at=None, ready_at=None, time_to_ready=None,
            first_lines=[], adopted=False, restarts=0,
        )
        keeper.restarts = 0
        report(b"ok")
        return keeper.run()
    except Exception as exc:
        log.exception("keeper failed")
        report(f"error: {exc}".encode())
        with contextlib.suppress(Exception):
            # The child (if any) lives on and can be adopted or stopped; say so.
            keeper.journal.update(error=f"the keeper failed ({exc}); see {run_dir / KEEPER_LOG}")
        return 1
    finally:
        unlock(lock_fd)
