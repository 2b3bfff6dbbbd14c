"""Copy what a keeper reports (status.json, events.jsonl) into the database.

The keeper's run directory on the process's host is the truth about the
process; this makes the database, which every page reads, follow it. It runs
in the worker of that host: after a start or stop task, in the watcher thread
a few times a second, and in the periodic reconcile. Copying twice is harmless:
each journal line becomes an Activity row once (unique on kind, object, host, seq).

Every function here works for every kind: the process's row is found through its
adapter (``processes.adapters``), by ``kind`` and primary key.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from portal.process import keeper, states
from portal.process.states import ACTIVE, BACKOFF, EXITED, RUNNING, STARTING, STOPPED, UNKNOWN
from processes.adapters import ProcessAdapter, adapter_for, adapter_of
from processes.models import Activity, ManagedProcess, Run

MACHINE_TRIGGERS = {"auto-restart", "reconcile", "keeper", "system"}


def _when(epoch: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC) if epoch else None


def user_of(trigger: str) -> Any:
    """The account behind a trigger such as "ada", "api:ada" or "cli:ada"."""
    if not trigger or trigger in MACHINE_TRIGGERS:
        return None
    username = trigger.split(":", 1)[1] if trigger.startswith(("api:", "cli:")) else trigger
    return get_user_model().objects.filter(username=username).first()


def level_of(event: dict[str, Any]) -> str:
    if event.get("level") == "warning":  # a note that says so (a start not sandboxed)
        return Activity.Level.WARNING
    to = event.get("to")
    if to in states.ERROR or (to == EXITED and event.get("expected") is False):
        return Activity.Level.ERROR
    if to in (UNKNOWN, EXITED):
        return Activity.Level.WARNING
    return Activity.Level.INFO


def adapter(kind: str | ProcessAdapter) -> ProcessAdapter:
    return kind if isinstance(kind, ProcessAdapter) else adapter_for(kind)


def record(obj: ManagedProcess, *, message: str, trigger: str, level: str = "info", host: str = "",
           user: Any = None, **fields: Any) -> Activity:
    """An Activity row that is not a keeper transition: a request, a refused start, a check."""
    kind = adapter_of(obj)
    return Activity.objects.create(
        kind=kind.kind,
        object_id=obj.pk,
        name=obj.name,
        at=fields.pop("at", None) or dt.datetime.now(dt.UTC),
        trigger=trigger,
        user=user if user is not None and hasattr(user, "_meta") else None,
        level=level,
        host=host or obj.run_host,
        message=message,
        port=kind.port_of(obj),
        **fields,
    )


def sync(kind: str | ProcessAdapter, pk: int, host: str) -> Any:
    """Bring one process's row and its activity up to date with its keeper (None: the row is gone)."""
    kind = adapter(kind)
    model = kind.model
    obj = model.groups.filter(pk=pk).first()
    if obj is None:
        return None
    rd = kind.run_dir(obj)
    if not keeper.read_status(rd):
        return obj
    with transaction.atomic():
        # Re-read inside the write transaction: two syncs of one process run one
        # after the other (row lock on PostgreSQL, IMMEDIATE transactions on SQLite).
        obj = model.groups.select_for_update().get(pk=pk)
        # The events first, then the status: the keeper writes a journal line before the status
        # that follows from it, so a status read after the events is never older than they are
        # (read before them, a kill -9's "exited" could be recorded beside the old "running").
        events = keeper.read_events(rd, after_seq=obj.last_seq)
        status = keeper.read_status(rd)
        if status is None:
            return obj
        if status.get("state") in ACTIVE and not keeper.keeper_alive(rd):
            # Nobody keeps it: find out from the operating system what is true now.
            status = keeper.reconcile(rd) or status
        users: dict[str, Any] = {}
        for event in events:
            _apply_event(kind, obj, event, status, host, users)
        _apply_status(obj, status, host, events)
        settle_request(obj, status)
    return obj


OUTCOME = states.OUTCOME


def awaiting(seq: int | None, until: str) -> dict[str, Any]:
    """What a task leaves on the row (``startup["request"]``) when it returns before the outcome.

    ``at`` (this host's clock, as the keeper's ``updated_at``) tells a status written after the
    launch or the stop signal from an older one, which says nothing about this request.
    """
    return {"seq": seq, "until": until, "at": time.time()}


def await_request(kind: str | ProcessAdapter, pk: int, seq: int | None, until: str) -> None:
    """Record ``awaiting(...)`` on the row, in one transaction with the row locked (as ``sync``)."""
    with transaction.atomic():
        obj = adapter(kind).model.groups.select_for_update().filter(pk=pk).first()
        if obj is None:
            return
        obj.startup = {**obj.startup, "request": awaiting(seq, until)}
        obj.save(update_fields=["startup"])


def settle_request(obj: ManagedProcess, status: dict[str, Any]) -> None:
    """The request a task handed over has its outcome: clear its intent, so that pages stop
    showing it in flight and ``control.wait_settled`` returns. Only while that request is still
    the row's latest (``request_seq``): a later request's intent stays for its own task."""
    pending = obj.startup.get("request")
    if not isinstance(pending, dict):
        return
    if (status.get("updated_at") or 0) < (pending.get("at") or 0):
        return  # a status from before the launch or the stop
    if status.get("state") not in OUTCOME.get(pending.get("until"), ()):
        return
    rows = type(obj).groups.filter(pk=obj.pk)
    if pending.get("seq") is not None:
        rows = rows.filter(request_seq=pending["seq"])
    if rows.update(intent=""):
        obj.intent = ""
    obj.startup = {k: v for k, v in obj.startup.items() if k != "request"}
    obj.save(update_fields=["startup"])


def _apply_event(kind: ProcessAdapter, obj: ManagedProcess, event: dict[str, Any], status: dict[str, Any],
                 host: str, users: dict[str, Any]) -> None:
    trigger = str(event.get("trigger") or "keeper")
    if trigger not in users:
        users[trigger] = user_of(trigger)
    at = _when(event.get("time")) or dt.datetime.now(dt.UTC)
    run = _track_run(kind, obj, event, status, host, at)
    Activity.objects.bulk_create(
        [
            Activity(
                kind=kind.kind,
                object_id=obj.pk,
                name=obj.name,
                at=at,
                from_state=event.get("from") or "",
                to_state=event.get("to") or "",
                pid=event.get("pid"),
                port=kind.port_of(obj),
                exit_code=event.get("exit_code"),
                signal=event.get("signal") or "",
                expected=event.get("expected"),
                trigger=trigger,
                user=users[trigger],
                level=level_of(event),
                host=host,
                message=event.get("message") or "",
                run=run,
                seq=event.get("seq"),
            )
        ],
        ignore_conflicts=True,
    )
    obj.last_seq = max(obj.last_seq, int(event.get("seq") or 0))
    if event.get("to") == STARTING:
        obj.startup = {**obj.startup, "trigger": trigger}


# How a run ends, by the state its process leaves in.
_RUN_OUTCOME = {
    EXITED: Run.Outcome.EXITED,
    STOPPED: Run.Outcome.STOPPED,
    BACKOFF: Run.Outcome.FAILED,
    UNKNOWN: Run.Outcome.LOST,
}


def _track_run(kind: ProcessAdapter, obj: ManagedProcess, event: dict[str, Any], status: dict[str, Any],
               host: str, at: dt.datetime) -> Run | None:
    """One Run per process started: opened at its first event with a pid, closed at its end."""
    pid, to = event.get("pid"), event.get("to")
    if not pid or (to in states.MOVING and not _open_run(kind, obj, host, pid)):
        return None
    run = _open_run(kind, obj, host, pid)
    if run is None:
        if to != RUNNING and to not in _RUN_OUTCOME:
            return None
        started = _when(status.get("run_started_at")) if status.get("pid") == pid else None
        trigger = obj.startup.get("trigger", "keeper")
        run = Run.objects.create(
            kind=kind.kind,
            object_id=obj.pk,
            name=obj.name,
            requested_by=user_of(trigger),
            trigger=trigger,
            host=host,
            pid=pid,
            started_at=started or at,
            command=status.get("command") or "",
        )
    if to == RUNNING:
        run.ready_at = at
        run.outcome = Run.Outcome.RUNNING
    elif to in _RUN_OUTCOME:
        run.stopped_at = at
        run.exit_code = event.get("exit_code")
        run.signal = event.get("signal") or ""
        run.message = event.get("message") or ""
        run.outcome = _RUN_OUTCOME[to]
    run.save()
    return run


def _open_run(kind: ProcessAdapter, obj: ManagedProcess, host: str, pid: int) -> Run | None:
    return (
        Run.objects.filter(kind=kind.kind, object_id=obj.pk, host=host, pid=pid, stopped_at__isnull=True)
        .order_by("-started_at")
        .first()
    )


def _apply_status(obj: ManagedProcess, status: dict[str, Any], host: str, events: list[dict[str, Any]]) -> None:
    state = status.get("state") or STOPPED
    if state != obj.state or events:
        last_time = _when(events[-1].get("time")) if events else None
        obj.state_changed_at = last_time or obj.state_changed_at or dt.datetime.now(dt.UTC)
    obj.state = state
    obj.pid = status.get("pid") if state in ACTIVE else None
    obj.pid_create_time = status.get("create_time") if obj.pid else None
    obj.run_host = host
    obj.last_error = status.get("error") or ""
    obj.startup = {
        **obj.startup,
        "command": status.get("command"),
        "first_lines": status.get("first_lines") or [],
        "time_to_ready": status.get("time_to_ready"),
        "run_started_at": status.get("run_started_at"),
        "ready_at": status.get("ready_at"),
        "restarts": status.get("restarts") or 0,
        "log_file": status.get("log_file"),
        "sandbox": status.get("sandbox"),
        "account": status.get("account"),
        "error": status.get("error"),
    }
    obj.save(
        update_fields=[
            "state", "state_changed_at", "pid", "pid_create_time", "run_host", "last_error", "startup",
            "last_seq",
        ]
    )
