"""Celery tasks that start, stop and restart managed processes on their host, and reconcile.

Each task takes the kind (an adapter's ``kind``, e.g. "gateway") and a primary key,
re-reads the row, and is safe to run twice: a double click, a redelivered message or
twenty concurrent starts give one process, because (1) the task claims the start
with a conditional UPDATE that only one can win, and (2) the keeper holds an
exclusive lock on the run directory, so a second keeper for the same process
cannot exist. Where kinds differ (the checks before a start, the spec) the task
asks the kind's adapter (processes/adapters.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from portal.process import accounts, checks, keeper, lock
from portal.process.accounts import AccountError
from portal.process.states import DOWN, STARTABLE, STARTING, STOPPED, STOPPING
from processes import sync
from processes.accounts import cannot_switch
from processes.adapters import ProcessAdapter, adapter_of, all_adapters
from processes.models import ManagedProcess

log = logging.getLogger(__name__)

# How long a task waits for the task before it on the same process (a launch or a stop).
LOCK_WAIT = 120.0
# How long a stop task waits for the keeper to stop before leaving the rest to the watcher.
STOP_WAIT = 3.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _latest(kind: ProcessAdapter, pk: int, seq: int | None) -> bool:
    """Is the request this task was sent for still the process's latest? (None: a task
    not tied to a request, e.g. from an older portal: it acts.)"""
    if seq is None:
        return True
    return kind.model.objects.filter(pk=pk, request_seq=seq).exists()


def _of_request(kind: ProcessAdapter, pk: int, seq: int | None) -> Any:
    """The row, if ``seq`` is still its latest request: writes through this act for that request only."""
    rows = kind.model.objects.filter(pk=pk)
    return rows if seq is None else rows.filter(request_seq=seq)


def _done(kind: ProcessAdapter, pk: int, seq: int | None) -> None:
    """The request has been acted on: pages stop showing it as in flight. A later
    request's intent stays: its own task clears it."""
    _of_request(kind, pk, seq).update(intent="")


SUPERSEDED = {"note": "a later request replaced this one; nothing done"}


def preflight(obj: ManagedProcess) -> checks.CheckFailure | None:
    """What would make a start fail, found before the start: the kind's checks (its adapter's)."""
    return adapter_of(obj).preflight(obj)


def refuse_start(obj: ManagedProcess, trigger: str, failure: checks.CheckFailure, seq: int | None) -> dict[str, Any]:
    kind = adapter_of(obj)
    message = f"Start refused: {failure.message}"
    # One transaction: whoever sees the error on the row also finds it in the activity.
    with transaction.atomic():
        sync.record(obj, message=message, trigger=trigger, level="error", host=settings.PORTAL_HOST_NAME,
                    user=sync.user_of(trigger))
        _of_request(kind, obj.pk, seq).update(
            last_error=message,
            intent="",
            startup={
                "error": message,
                "check": failure.code,
                "fix": failure.fix,
                "fix_argv": failure.fix_argv,
                "command": kind.display_command(obj),
                **({"output": failure.output} if failure.output else {}),
            },
        )
    return {"state": obj.state, "error": message}


def _warn(obj: ManagedProcess, trigger: str, message: str) -> None:
    log.warning("%s", message)
    sync.record(obj, message=message, trigger=trigger, level="warning", host=settings.PORTAL_HOST_NAME,
                user=sync.user_of(trigger))


def _serialized(kind: ProcessAdapter, obj: ManagedProcess, work: Any) -> Any:
    """Run ``work()`` holding the process's control lock on this host: one launch or stop at a time."""
    try:
        with lock.control_lock(kind.run_dir(obj), timeout=LOCK_WAIT):
            return work()
    except lock.LockTimeout as e:
        message = f"Not done: another start or stop of {obj.name} is still busy ({e}); try again."
        sync.record(obj, message=message, trigger="system", level="error", host=settings.PORTAL_HOST_NAME)
        return {"error": message}


def start(kind: str | ProcessAdapter, pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    """Launch the process's keeper on this host, unless a later request replaced this one."""
    kind = sync.adapter(kind)
    obj = kind.model.objects.filter(pk=pk).first()
    if obj is None:
        return {"error": "the definition was deleted"}
    if not _latest(kind, pk, seq):
        return SUPERSEDED
    result = _serialized(kind, obj, lambda: _start_locked(kind, pk, trigger, seq))
    if result.get("launched"):
        # Not waited for: the process may take up to its init timeout (300 s) to be ready, and
        # this worker has two slots. The watcher copies the outcome into the row and clears
        # the request's intent then (sync.settle_request, through the "request" the claim wrote).
        return {"state": STARTING, "launched": True}
    return result


def _start_locked(kind: ProcessAdapter, pk: int, trigger: str, seq: int | None) -> dict[str, Any]:
    host = settings.PORTAL_HOST_NAME
    obj = sync.sync(kind, pk, host)
    if obj is None:
        return {"error": "the definition was deleted"}
    if not _latest(kind, pk, seq):
        return SUPERSEDED
    rd = kind.run_dir(obj)
    if obj.state == STOPPING:
        # A stop that is not ours is still under way (its keeper ends it): let it finish, then start.
        keeper.wait_for(rd, DOWN, timeout=kind.stop_timeout(obj) + 5)
        obj = sync.sync(kind, pk, host) or obj
    if obj.state not in STARTABLE:
        _done(kind, pk, seq)
        return {"state": obj.state, "note": "already active; nothing to do"}
    try:
        # Who it runs as, and its home made for that user, before anything of it runs (its build).
        account = kind.prepare_account(obj)
    except AccountError as e:
        return refuse_start(obj, trigger, checks.CheckFailure("account", str(e)), seq)
    except OSError as e:
        failure = checks.CheckFailure("account", f"its folder {kind.hosted_dir(obj)} cannot be made "
                                                 f"({e.strerror or e}): check PORTAL_HOSTED_DIR")
        return refuse_start(obj, trigger, failure, seq)
    deferred = kind.defer_start(obj, trigger, seq)
    if deferred:
        # The request stays in flight (its intent): the deferred work starts it, or refuses it.
        return {"state": obj.state, "note": deferred}
    failure = kind.preflight(obj)
    if failure:
        return refuse_start(obj, trigger, failure, seq)
    with transaction.atomic():
        # The claim, and the last check that this request is still the latest one.
        claimed = _of_request(kind, pk, seq).filter(state__in=STARTABLE).update(
            state=STARTING, state_changed_at=_now(), run_host=host, last_error="",
            startup={"request": sync.awaiting(seq, "start")},
        )
    if not claimed:
        if not _latest(kind, pk, seq):
            return SUPERSEDED
        _done(kind, pk, seq)
        return {"state": STARTING, "note": "another task is starting it"}
    obj.refresh_from_db()
    warning = kind.launch_warning(obj)
    if warning:
        _warn(obj, trigger, warning)
    if account is None:
        _warn(obj, trigger, f"Runs as the portal's own user ({accounts.portal_user()}), not as a user of its own: "
                            f"{cannot_switch()} (docs/security.md)")
    elif account.is_root:
        _warn(obj, trigger, "Runs as root, as an Administrator allowed: its code may do anything on this host")
    try:
        spec = kind.build_spec(obj)
        spec.sandbox = kind.sandbox(obj)
        spec.account = account.to_dict() if account is not None else None
        keeper.launch(spec, rd, trigger=trigger)
    except keeper.KeeperBusy:
        sync.sync(kind, pk, host)
        _done(kind, pk, seq)
        return {"state": STARTING, "note": "its keeper is already running"}
    except keeper.AlreadyRunning as e:
        keeper.adopt(rd)
        sync.record(obj, message=f"Re-adopted: {e}", trigger="reconcile", level="warning", host=host)
    except (keeper.KeeperError, OSError) as e:
        kind.model.objects.filter(pk=pk).update(state=STOPPED, last_error=f"Start failed: {e}")
        _done(kind, pk, seq)
        sync.record(obj, message=f"Start failed: {e}", trigger=trigger, level="error", host=host)
        return {"state": STOPPED, "error": str(e)}
    return {"launched": True}


def stop(kind: str | ProcessAdapter, pk: int, trigger: str = "system", seq: int | None = None,
         finish: bool = True) -> dict[str, Any]:
    """Ask the process's keeper to stop it; ``finish=False`` (a restart's stop) waits in full."""
    kind = sync.adapter(kind)
    obj = kind.model.objects.filter(pk=pk).first()
    if obj is None:
        return {"error": "the definition was deleted"}
    if not _latest(kind, pk, seq):
        return SUPERSEDED
    return _serialized(kind, obj, lambda: _stop_locked(kind, pk, trigger, seq, finish))


def _stop_locked(kind: ProcessAdapter, pk: int, trigger: str, seq: int | None, finish: bool) -> dict[str, Any]:
    host = settings.PORTAL_HOST_NAME
    obj = sync.sync(kind, pk, host)
    if obj is None:
        return {"error": "the definition was deleted"}
    if not _latest(kind, pk, seq):
        return SUPERSEDED
    rd = kind.run_dir(obj)
    if keeper.read_status(rd) is None:
        _of_request(kind, pk, seq).update(state=STOPPED, **({"intent": ""} if finish else {}))
        return {"state": STOPPED}
    if finish:
        # Written before the signal: a stop slower than STOP_WAIT is then settled by the watcher.
        sync.await_request(kind, pk, seq, "stop")
    # A bounded wait: most processes stop in well under a second, and the task then reports the
    # outcome itself; one slow to stop (up to its stop timeout, 300 s, before SIGKILL) does not
    # hold a worker slot that long. A restart waits in full: its start must follow the stop.
    full = kind.stop_timeout(obj) + 5
    keeper.request_stop(rd, timeout=full if not finish else min(STOP_WAIT, full), trigger=trigger)
    obj = sync.sync(kind, pk, host)
    state = obj.state if obj else STOPPED
    if finish and state in DOWN:
        _done(kind, pk, seq)
    return {"state": state}


def restart(kind: str | ProcessAdapter, pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    result = stop(kind, pk, trigger, seq, finish=False)
    if result is SUPERSEDED or result.get("error"):
        return result
    return start(kind, pk, trigger, seq)


@shared_task(acks_late=True, ignore_result=True)
def start_process(kind: str, pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return start(kind, pk, trigger, seq)


@shared_task(acks_late=True, ignore_result=True)
def stop_process(kind: str, pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return stop(kind, pk, trigger, seq)


@shared_task(acks_late=True, ignore_result=True)
def restart_process(kind: str, pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return restart(kind, pk, trigger, seq)


TASKS = {"start": start_process, "stop": stop_process, "restart": restart_process}


@shared_task(ignore_result=True)
def reconcile_all() -> int:
    """Beat's job: ask every host that runs managed processes (of every kind) to reconcile its own."""
    from portal.queues import host_queue

    hosts = {settings.PORTAL_HOST_NAME}
    for kind in all_adapters():
        hosts |= set(kind.model.objects.exclude(run_host="").values_list("run_host", flat=True))
    for host in hosts:
        # expires: a host without a worker must not pile up reconciles for later.
        reconcile_host.apply_async(args=[host], queue=host_queue(host), expires=10)
    return len(hosts)


@shared_task(ignore_result=True)
def reconcile_host(host: str | None = None) -> dict[str, int]:
    """Make the database true for this host's processes; adopt orphans; restart the dead by policy."""
    from processes.watcher import reconcile_local

    return reconcile_local(host or settings.PORTAL_HOST_NAME)


# The install button: seconds the command may take (pip may build from source).
INSTALL_TIMEOUT = 600
INSTALL_TAIL = 5  # lines of output kept when it fails


def run_install(argv: list[str]) -> tuple[int | None, list[str]]:
    """Run an install command (never through a shell): its exit code (None when it did not
    finish) and its last lines of output. Every kind's install buttons use it."""
    import os
    import subprocess

    from processes.adapters import package_environment

    try:
        # umask 022: what it installs is for the interpreter's users, who are not the portal's
        # (hosted code runs as users of its own), not private as the portal's own files are.
        # The site's package index (PORTAL_PACKAGE_*) in pip's environment, never in argv.
        result = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                                stdin=subprocess.DEVNULL, check=False, umask=0o022,
                                env={**os.environ, **package_environment()})
        output, code = (result.stdout + result.stderr).strip(), result.returncode
    except subprocess.TimeoutExpired as e:
        output, code = f"{e.output or ''}\nstopped after {INSTALL_TIMEOUT} s", None
    except OSError as e:
        output, code = str(e), None
    return code, [line for line in output.splitlines() if line.strip()][-INSTALL_TAIL:]
