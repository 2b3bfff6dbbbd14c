"""The start pipeline, and stop and restart: what the tasks (processes/tasks.py) do on a host.

A start is one straight pipeline, under the process's control lock on its host:

1. re-read the row (``sync.sync``); give up if a later request replaced this one;
2. wait for a stop under way; nothing to do if it already runs;
3. its account and its home (``adapter.prepare_account``);
4. the steps its kind declares (``adapter.start_steps``, processes/adapters.py), in order:
   for a web application the virtualenv build, then the checks (its import, its engine);
   for a gateway the checks. Between two steps, and every few tenths of a second during a
   long one (a build), the last-request rule is asked again: a later request (a Stop) makes
   this start give up, and a long step is stopped where it is;
5. the claim (a conditional UPDATE only one task wins), then the keeper's launch.

Each start, stop or restart is safe to run twice: a double click, a redelivered message or
twenty concurrent starts give one process, because (1) the claim is a conditional UPDATE
that only one can win, and (2) the keeper holds an exclusive lock on the run directory, so
a second keeper for the same process cannot exist. Where kinds differ (the steps, the
spec) the pipeline asks the kind's adapter.

A start whose kind has a long step with work to do now (a virtualenv to build) is sent to
the host's build queue (``queue_for``), served by a worker of its own: a build of minutes
never holds the slots that the starts and stops of other definitions need. Its stop still
goes to the host's queue, and wins: the build notices within ``CANCEL_POLL`` and stops.

No Celery here: ``send`` names the tasks, so that the watcher (which restarts by policy)
and processes/tasks.py (which runs the watcher's reconcile) import this module, never each other.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from django.conf import settings
from django.db import transaction

from portal.process import accounts, checks, keeper, lock
from portal.process.accounts import Account, AccountError
from portal.process.states import DOWN, RESTART, START, STARTABLE, STARTING, STOP, STOPPED, STOPPING
from portal.queues import build_queue
from processes import sync
from processes.accounts import cannot_switch
from processes.adapters import ProcessAdapter, StartStep, adapter_of
from processes.models import ManagedProcess

log = logging.getLogger(__name__)

# How long a task waits for the task before it on the same process (a launch or a stop).
LOCK_WAIT = 120.0
# How long a stop task waits for the keeper to stop before leaving the rest to the watcher.
STOP_WAIT = 3.0
# How often a long step (a virtualenv build) asks whether a later request replaced its start.
CANCEL_POLL = 0.2
# The tasks of processes/tasks.py, by action: sent by name (see the module's docstring).
TASK_NAMES = {START: "processes.tasks.start_process", STOP: "processes.tasks.stop_process",
              RESTART: "processes.tasks.restart_process"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _latest(kind: ProcessAdapter, pk: int, seq: int | None) -> bool:
    """Is the request this task was sent for still the process's latest? (None: a task
    not tied to a request, e.g. from an older portal: it acts.)"""
    if seq is None:
        return True
    return kind.model.groups.filter(pk=pk, request_seq=seq).exists()


def _of_request(kind: ProcessAdapter, pk: int, seq: int | None) -> Any:
    """The row, if ``seq`` is still its latest request: writes through this act for that request only."""
    rows = kind.model.groups.filter(pk=pk)
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


# A step's answer when a later request stopped it: not a refusal, the later request has the row.
CANCELLED = checks.CheckFailure("superseded", "a later request replaced this start")


def _run_step(kind: ProcessAdapter, obj: ManagedProcess, step: StartStep, account: Account | None,
              seq: int | None) -> checks.CheckFailure | None:
    """Run one step of the start; a long one is watched, and told to stop (``cancel``) as soon
    as a later request exists. Returns the step's failure, None, or CANCELLED."""
    cancel = threading.Event()
    if not step.long or seq is None:
        return step.run(obj, account, cancel)
    finished = threading.Event()

    def watch() -> None:
        from django.db import connection

        try:
            while not finished.wait(CANCEL_POLL):
                if not _latest(kind, obj.pk, seq):
                    cancel.set()
                    return
        finally:
            connection.close()  # this thread's own connection

    watcher = threading.Thread(target=watch, name=f"cancel-{kind.kind}-{obj.pk}", daemon=True)
    watcher.start()
    try:
        failure = step.run(obj, account, cancel)
    finally:
        finished.set()
        watcher.join()
    if cancel.is_set() or not _latest(kind, obj.pk, seq):
        return CANCELLED
    return failure


def needs_long_work(kind: ProcessAdapter, obj: ManagedProcess) -> bool:
    """Has a long step of its start work to do now (a virtualenv to build)?"""
    return any(step.long and step.needed(obj) for step in kind.start_steps(obj))


def queue_for(action: str, obj: ManagedProcess) -> str:
    """Where the task of ``action`` goes: the host's queue, or its build queue for a start (or a
    restart) with long work to do, so that the host's start slots stay free meanwhile."""
    kind = adapter_of(obj)
    if action != STOP and needs_long_work(kind, obj):
        return build_queue(kind.host_of(obj))
    return kind.queue_of(obj)


def send(action: str, obj: ManagedProcess, trigger: str, seq: int | None, **options: Any) -> str:
    """Send the task of ``action`` for ``obj`` (by name: processes/tasks.py); returns its queue."""
    from celery import current_app

    queue = queue_for(action, obj)
    current_app.send_task(TASK_NAMES[action], args=[adapter_of(obj).kind, obj.pk, trigger, seq], queue=queue,
                          **options)
    return queue


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
    obj, ended = _current(kind, pk, seq, synced=False)
    if ended is not None:
        return ended
    result = _serialized(kind, obj, lambda: _start_locked(kind, pk, trigger, seq))
    if result.get("launched"):
        # Not waited for: the process may take up to its init timeout (300 s) to be ready, and
        # this worker has two slots. The watcher copies the outcome into the row and clears
        # the request's intent then (sync.settle_request, through the "request" the claim wrote).
        return {"state": STARTING, "launched": True}
    return result


def _current(kind: ProcessAdapter, pk: int, seq: int | None,
             synced: bool = True) -> tuple[Any, dict[str, Any] | None]:
    """The definition (as this host sees it now when ``synced``; else its row as it stands, before
    the lock), or why the request ends here (deleted, superseded)."""
    obj = sync.sync(kind, pk, settings.PORTAL_HOST_NAME) if synced else kind.model.groups.filter(pk=pk).first()
    if obj is None:
        return None, {"error": "the definition was deleted"}
    if not _latest(kind, pk, seq):
        return None, SUPERSEDED
    return obj, None


def _start_locked(kind: ProcessAdapter, pk: int, trigger: str, seq: int | None) -> dict[str, Any]:
    host = settings.PORTAL_HOST_NAME
    obj, ended = _current(kind, pk, seq)
    if ended is not None:
        return ended
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
    for step in kind.start_steps(obj):
        if not _latest(kind, pk, seq):
            return SUPERSEDED
        failure = _run_step(kind, obj, step, account, seq)
        if failure is CANCELLED:
            sync.record(obj, message=f"Start given up during {step.name}: a later request replaced it",
                        trigger=trigger, host=host)
            return SUPERSEDED
        if failure is not None:
            return refuse_start(obj, trigger, failure, seq)
    with transaction.atomic():
        # The claim, and the last check that this request is still the latest one.
        claimed = _of_request(kind, pk, seq).filter(state__in=STARTABLE).update(
            state=STARTING, state_changed_at=_now(), run_host=host, last_error="",
            startup={"request": sync.awaiting(seq, START)},
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
        kind.model.groups.filter(pk=pk).update(state=STOPPED, last_error=f"Start failed: {e}")
        _done(kind, pk, seq)
        sync.record(obj, message=f"Start failed: {e}", trigger=trigger, level="error", host=host)
        return {"state": STOPPED, "error": str(e)}
    return {"launched": True}


def stop(kind: str | ProcessAdapter, pk: int, trigger: str = "system", seq: int | None = None,
         finish: bool = True) -> dict[str, Any]:
    """Ask the process's keeper to stop it; ``finish=False`` (a restart's stop) waits in full."""
    kind = sync.adapter(kind)
    obj, ended = _current(kind, pk, seq, synced=False)
    if ended is not None:
        return ended
    return _serialized(kind, obj, lambda: _stop_locked(kind, pk, trigger, seq, finish))


def _stop_locked(kind: ProcessAdapter, pk: int, trigger: str, seq: int | None, finish: bool) -> dict[str, Any]:
    host = settings.PORTAL_HOST_NAME
    obj, ended = _current(kind, pk, seq)
    if ended is not None:
        return ended
    rd = kind.run_dir(obj)
    if keeper.read_status(rd) is None:
        _of_request(kind, pk, seq).update(state=STOPPED, **({"intent": ""} if finish else {}))
        return {"state": STOPPED}
    if finish:
        # Written before the signal: a stop slower than STOP_WAIT is then settled by the watcher.
        sync.await_request(kind, pk, seq, STOP)
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
