"""Copy what a keeper reports (status.json, events.jsonl) into the database.

The keeper's run directory on the gateway's host is the truth about the
process; this makes the database, which every page reads, follow it. It runs
in the worker of that host: after a start or stop task, in the watcher thread
a few times a second, and in the periodic reconcile. Copying twice is harmless:
each journal line becomes an Activity row once (unique on gateway, host, seq).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from gateways import runtime
from gateways.models import Activity, Gateway, Run
from portal.process import keeper, states
from portal.process.states import ACTIVE, BACKOFF, EXITED, RUNNING, STARTING, STOPPED, UNKNOWN

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
    to = event.get("to")
    if to in states.ERROR or (to == EXITED and event.get("expected") is False):
        return Activity.Level.ERROR
    if to in (UNKNOWN, EXITED):
        return Activity.Level.WARNING
    return Activity.Level.INFO


def record(gateway: Gateway, *, message: str, trigger: str, level: str = "info", host: str = "", user: Any = None,
           **fields: Any) -> Activity:
    """An Activity row that is not a keeper transition: a request, a refused start, a check."""
    return Activity.objects.create(
        gateway=gateway,
        gateway_name=gateway.name,
        at=fields.pop("at", None) or dt.datetime.now(dt.UTC),
        trigger=trigger,
        user=user if user is not None and hasattr(user, "_meta") else None,
        level=level,
        host=host or gateway.run_host,
        message=message,
        port=gateway.port,
        **fields,
    )


def sync(gateway_pk: int, host: str) -> Gateway | None:
    """Bring one gateway's row and its activity up to date with its keeper."""
    try:
        gateway = Gateway.objects.get(pk=gateway_pk)
    except Gateway.DoesNotExist:
        return None
    rd = runtime.run_dir(gateway)
    status = keeper.read_status(rd)
    if status is None:
        return gateway
    if status.get("state") in ACTIVE and not keeper.keeper_alive(rd):
        # Nobody keeps it: find out from the operating system what is true now.
        status = keeper.reconcile(rd) or status
    with transaction.atomic():
        # Re-read inside the write transaction: two syncs of one gateway run one
        # after the other (row lock on PostgreSQL, IMMEDIATE transactions on SQLite).
        gateway = Gateway.objects.select_for_update().get(pk=gateway_pk)
        events = keeper.read_events(rd, after_seq=gateway.last_seq)
        users: dict[str, Any] = {}
        for event in events:
            _apply_event(gateway, event, status, host, users)
        _apply_status(gateway, status, host, events)
        settle_request(gateway, status)
    return gateway


OUTCOME = states.OUTCOME


def awaiting(seq: int | None, until: str) -> dict[str, Any]:
    """What a task leaves on the row (``startup["request"]``) when it returns before the outcome.

    ``at`` (this host's clock, as the keeper's ``updated_at``) tells a status written after the
    launch or the stop signal from an older one, which says nothing about this request.
    """
    return {"seq": seq, "until": until, "at": time.time()}


def await_request(gateway_pk: int, seq: int | None, until: str) -> None:
    """Record ``awaiting(...)`` on the row, in one transaction with the row locked (as ``sync``)."""
    with transaction.atomic():
        gateway = Gateway.objects.select_for_update().filter(pk=gateway_pk).first()
        if gateway is None:
            return
        gateway.startup = {**gateway.startup, "request": awaiting(seq, until)}
        gateway.save(update_fields=["startup"])


def settle_request(gateway: Gateway, status: dict[str, Any]) -> None:
    """The request a task handed over has its outcome: clear its intent, so that pages stop
    showing it in flight and ``control.wait_settled`` returns. Only while that request is still
    the row's latest (``request_seq``): a later request's intent stays for its own task."""
    pending = gateway.startup.get("request")
    if not isinstance(pending, dict):
        return
    if (status.get("updated_at") or 0) < (pending.get("at") or 0):
        return  # a status from before the launch or the stop
    if status.get("state") not in OUTCOME.get(pending.get("until"), ()):
        return
    rows = Gateway.objects.filter(pk=gateway.pk)
    if pending.get("seq") is not None:
        rows = rows.filter(request_seq=pending["seq"])
    if rows.update(intent=""):
        gateway.intent = ""
    gateway.startup = {k: v for k, v in gateway.startup.items() if k != "request"}
    gateway.save(update_fields=["startup"])


def _apply_event(gateway: Gateway, event: dict[str, Any], status: dict[str, Any], host: str,
                 users: dict[str, Any]) -> None:
    trigger = str(event.get("trigger") or "keeper")
    if trigger not in users:
        users[trigger] = user_of(trigger)
    at = _when(event.get("time")) or dt.datetime.now(dt.UTC)
    run = _track_run(gateway, event, status, host, at)
    Activity.objects.bulk_create(
        [
            Activity(
                gateway=gateway,
                gateway_name=gateway.name,
                at=at,
                from_state=event.get("from") or "",
                to_state=event.get("to") or "",
                pid=event.get("pid"),
                port=gateway.port,
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
    gateway.last_seq = max(gateway.last_seq, int(event.get("seq") or 0))
    if event.get("to") == STARTING:
        gateway.startup = {**gateway.startup, "trigger": trigger}


# How a run ends, by the state its process leaves in.
_RUN_OUTCOME = {
    EXITED: Run.Outcome.EXITED,
    STOPPED: Run.Outcome.STOPPED,
    BACKOFF: Run.Outcome.FAILED,
    UNKNOWN: Run.Outcome.LOST,
}


def _track_run(gateway: Gateway, event: dict[str, Any], status: dict[str, Any], host: str,
               at: dt.datetime) -> Run | None:
    """One Run per process started: opened at its first event with a pid, closed at its end."""
    pid, to = event.get("pid"), event.get("to")
    if not pid or (to in states.MOVING and not _open_run(gateway, host, pid)):
        return None
    run = _open_run(gateway, host, pid)
    if run is None:
        if to != RUNNING and to not in _RUN_OUTCOME:
            return None
        started = _when(status.get("run_started_at")) if status.get("pid") == pid else None
        trigger = gateway.startup.get("trigger", "keeper")
        run = Run.objects.create(
            gateway=gateway,
            gateway_name=gateway.name,
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


def _open_run(gateway: Gateway, host: str, pid: int) -> Run | None:
    return (
        Run.objects.filter(gateway=gateway, host=host, pid=pid, stopped_at__isnull=True)
        .order_by("-started_at")
        .first()
    )


def _apply_status(gateway: Gateway, status: dict[str, Any], host: str, events: list[dict[str, Any]]) -> None:
    state = status.get("state") or STOPPED
    if state != gateway.state or events:
        last_time = _when(events[-1].get("time")) if events else None
        gateway.state_changed_at = last_time or gateway.state_changed_at or dt.datetime.now(dt.UTC)
    gateway.state = state
    gateway.pid = status.get("pid") if state in ACTIVE else None
    gateway.pid_create_time = status.get("create_time") if gateway.pid else None
    gateway.run_host = host
    gateway.last_error = status.get("error") or ""
    gateway.startup = {
        **gateway.startup,
        "command": status.get("command"),
        "first_lines": status.get("first_lines") or [],
        "time_to_ready": status.get("time_to_ready"),
        "run_started_at": status.get("run_started_at"),
        "ready_at": status.get("ready_at"),
        "restarts": status.get("restarts") or 0,
        "log_file": status.get("log_file"),
        "error": status.get("error"),
    }
    gateway.save(
        update_fields=[
            "state", "state_changed_at", "pid", "pid_create_time", "run_host", "last_error", "startup",
            "last_seq",
        ]
    )
