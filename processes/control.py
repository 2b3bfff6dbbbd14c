"""Start, stop and restart: the service functions that views, the CLI and the API share.

A request checks the actor's role, records the intent (on the row and as an
Activity line) and hands the work to a Celery task on the queue of the host
where the process lives. It works for every kind of managed process: what differs
(the host, the label in messages, the kind's own status fields) comes from the
kind's adapter (processes/adapters.py). The task does the checks and launches or signals the
keeper there; the watcher of that host's worker copies the keeper's report into the
database and ends the request once it has its outcome (``sync.settle_request``).

The last request wins: each request takes the next number on the row, its task
carries that number and does nothing once a later request exists, and a caller
that waits (``wait_settled``) waits for the state the latest request leads to.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from portal import audit, health, roles
from portal.process import checks, states
from portal.process.states import RESTART, START, STOP
from processes import sync
from processes.adapters import adapter_of
from processes.models import ManagedProcess

# What a user may ask of a process (spelled in portal/process/states.py).
ACTIONS = (START, STOP, RESTART)


class ControlError(Exception):
    """A request that cannot be carried out; the message says why and what to do."""


def trigger_for(user: Any, channel: str = "web") -> str:
    """How the request is recorded: "ada" from the pages, "api:ada", "cli:ada"."""
    name = audit.actor_name(user)
    if channel == "web" or name.startswith("cli:"):
        return name
    return f"{channel}:{name}"


def _require_operator(user: Any, label_plural: str) -> None:
    if not roles.can_operate(user):
        raise PermissionDenied(
            f"Only an Operator or an Administrator may start and stop {label_plural}; ask an administrator for "
            "that role."
        )


def request(obj: ManagedProcess, action: str, user: Any, channel: str = "web", host: str | None = None) -> Any:
    """Record the intent and send the task to the process's host (a start with a virtualenv to
    build: to its build worker, processes.pipeline.queue_for). Returns the updated row.

    A definition that runs on several hosts (``process_groups``) is asked on each of them, or on
    ``host`` alone; each group's request is its own (its number, its task, its outcome)."""
    kind = adapter_of(obj)
    if action not in ACTIONS:
        raise ControlError(f"Unknown action {action!r}: use start, stop or restart.")
    _require_operator(user, kind.label_plural)
    if not obj.MANY_HOSTS:
        return _request_one(obj, action, user, channel)
    groups = list(obj.process_groups())
    if host:
        groups = [g for g in groups if kind.host_of(g).lower() == host.lower()]
        if not groups:
            raise ControlError(f"{obj.name} does not run on host {host}: add it to its hosts first, or pick one of "
                               f"{', '.join(kind.host_of(g) for g in obj.process_groups())}.")
    answer = None
    for group in groups:
        row = _request_one(group, action, user, channel)
        if group.pk == obj.pk:
            answer = row
    if answer is None:  # another host's group alone: the pages show the definition, as it now stands
        obj.refresh_from_db()
        answer = obj
    return answer


def _request_one(obj: ManagedProcess, action: str, user: Any, channel: str) -> Any:
    from processes import pipeline

    kind = adapter_of(obj)
    trigger = trigger_for(user, channel)
    now = dt.datetime.now(dt.UTC)
    intent = STOP if action == STOP else START
    seq = _take_number(obj, intent, action, now)
    unknown = kind.unknown_host(obj)
    if unknown is not None:
        return _answer_at_once(obj, action, trigger, user, now, seq, unknown)
    try:
        # Ask the broker first, briefly: Celery's own retries would keep the user waiting.
        health.redis_client(1.0).ping()
        pipeline.send(action, obj, trigger, seq,
                      retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2})
    except (OperationalError, RedisError) as e:
        # Not sent: nothing is requested (the number stays used, so older tasks still yield).
        type(obj).groups.filter(pk=obj.pk, request_seq=seq).update(intent="", requested="")
        raise ControlError(
            f"The {action} of {obj.name} was not sent: the task broker does not answer ({e}). "
            "Check that Redis and a worker run (`make run` starts both)."
        ) from None
    obj.refresh_from_db()
    obj.sent_seq = seq  # this request's number; the row's may already be a later one
    sync.record(
        obj,
        message=f"{action.capitalize()} requested",
        trigger=trigger,
        user=audit.account_of(user),
        host=kind.host_of(obj),
        at=now,
    )
    return obj


def request_install(obj: ManagedProcess, user: Any) -> str:
    """The install button (an Administrator's: the view checks): mark the install in flight on the
    row, send processes.tasks.install_requirements to the process's host, record the request.
    Returns the command it runs, as shown."""
    from processes import tasks

    kind = adapter_of(obj)
    plan = kind.install_of(obj)
    if plan is None:
        raise ControlError(f"A {kind.label} has nothing to install: its page names what its start needs.")
    if (obj.startup.get("install") or {}).get("state") == "installing":
        raise ControlError(f"An install for {obj.name} is already running: wait for its outcome below.")
    # The command as the refusal named it; the task runs the one its check computes then.
    command = obj.startup.get("fix") or plan.command([plan.python, "-m", "pip", "install", plan.what])
    now = dt.datetime.now(dt.UTC)
    trigger = trigger_for(user)
    try:
        # Ask the broker first, briefly, as a Start does: Celery's own reconnects take minutes.
        health.redis_client(1.0).ping()
        # In flight before the task is sent: a quick task's outcome is never overwritten by it.
        tasks.set_install(kind.kind, obj.pk, {"state": "installing", "command": command, "at": now.isoformat()})
        tasks.install_requirements.apply_async(
            args=[kind.kind, obj.pk, trigger], queue=kind.queue_of(obj),
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        )
    except (OperationalError, RedisError, RuntimeError) as e:
        tasks.set_install(kind.kind, obj.pk, None)
        raise ControlError(
            f"The install was not sent: the task broker does not answer ({e}). "
            "Check that Redis and a worker run (`make run` starts both), then press the button again."
        ) from None
    sync.record(obj, message=f"Install of {plan.what} requested: {command}", trigger=trigger,
                user=audit.account_of(user), host=kind.host_of(obj), at=now)
    return command


def _answer_at_once(obj: ManagedProcess, action: str, trigger: str, user: Any, now: dt.datetime, seq: int,
                    failure: checks.CheckFailure) -> Any:
    """The process's host does not exist (``adapter.unknown_host``): no worker would ever take
    the task, so the request is answered here, at once."""
    from processes import pipeline

    rows = type(obj).groups.filter(pk=obj.pk, request_seq=seq)

    sync.record(obj, message=f"{action.capitalize()} requested", trigger=trigger,
                user=audit.account_of(user), host=settings.PORTAL_HOST_NAME, at=now)
    if action == STOP and not obj.is_active:
        rows.update(intent="")  # nothing runs: nothing to stop
    elif action == STOP:
        rows.update(intent="", last_error=failure.message)
        sync.record(obj, message=f"Stop not sent: {failure.message}", trigger=trigger, level="error",
                    host=settings.PORTAL_HOST_NAME, user=audit.account_of(user))
    else:
        pipeline.refuse_start(obj, trigger, failure, seq)
    obj.refresh_from_db()
    obj.sent_seq = seq
    return obj


def _take_number(obj: ManagedProcess, intent: str, action: str, now: dt.datetime) -> int:
    """Record the request with the next number: the last request wins.

    One write transaction: the UPDATE holds the row (PostgreSQL) or the database
    (SQLite, IMMEDIATE) until commit, so the number read back is this request's.
    """
    rows = type(obj).groups.filter(pk=obj.pk)
    fields = {"intent": intent, "intent_at": now, "requested": action, "request_seq": F("request_seq") + 1}
    if intent == START:
        # A new start owes nothing to the last one's error: the pages must not say "Starting —
        # <old error>" while the task is on its way. This attempt's error, if any, comes when it happens.
        fields["last_error"] = ""
    with transaction.atomic():
        rows.update(**fields)
        return rows.values_list("request_seq", flat=True).get()


def check_definition_change(obj: ManagedProcess, changed: list[str]) -> None:
    """Refuse a change that the running process would not follow (or a delete)."""
    kind = adapter_of(obj)
    live = [g for g in obj.process_groups() if g.is_active] if obj.MANY_HOSTS else [obj] if obj.is_active else []
    if not live:
        return
    obj = live[0]
    needs_stop = [f for f in changed if f in kind.runtime_fields]
    if needs_stop:
        fields = ", ".join(f.replace("_", " ") for f in needs_stop)
        raise ControlError(
            f"{obj.name} is {obj.state}: stop {obj.name} first, then change {fields}. "
            f"The running {kind.label} would not follow a changed definition."
        )


def delete_blocker(obj: ManagedProcess) -> str:
    """Why the definition cannot be deleted now ("" when it can): the confirmation says it before a click."""
    if obj.MANY_HOSTS and obj.pk is not None:
        for group in obj.process_groups():
            if group.pk != obj.pk and (group.is_active or group.intent == START):
                return f"{obj.name} runs on {adapter_of(group).host_of(group)}: stop it there first, then delete it."
    if obj.is_active or obj.intent == START:
        # Deleting the definition of a live process would orphan it (and a gateway's listener).
        state = states.STARTING if obj.intent == START and not obj.is_active else obj.state
        return f"{obj.name} is {state}: stop {obj.name} first, then delete it."
    return ""


def wait_settled(obj: ManagedProcess, action: str, timeout: float) -> Any:
    """Wait until the latest request has been acted on and the state has settled where it leads.

    The latest request: when another request came after this one, the state it asks
    for is the one that will last, so that is what is waited for (see ``superseded``).
    """
    import time

    deadline = time.monotonic() + timeout
    if obj.MANY_HOSTS and obj.pk is not None:
        # Its other hosts' process groups first (each its own request), then its own row's.
        for group in obj.process_groups():
            if group.pk != obj.pk and group.requested:
                _wait_one(group, action, deadline, timeout)
    return _wait_one(obj, action, deadline, timeout)


def _wait_one(obj: ManagedProcess, action: str, deadline: float, timeout: float) -> Any:
    import time

    while True:
        obj.refresh_from_db()
        goal = obj.requested or action
        if not obj.intent and obj.state in states.SETTLED_AFTER[goal]:
            return obj
        if time.monotonic() > deadline:
            raise ControlError(
                f"{obj.name} is still {obj.state} after {timeout:g} s: is a worker running for host "
                f"{adapter_of(obj).host_of(obj)}? See the Activity page."
            )
        time.sleep(0.02)


def other_hosts_missed(obj: ManagedProcess, action: str) -> str | None:
    """After a wait: the other hosts' process groups of ``obj`` that did not reach the action's goal,
    each with its host, state and error (None: every one did, or it runs on one host)."""
    if not obj.MANY_HOSTS or obj.pk is None:
        return None
    kind = adapter_of(obj)
    missed = [f"on {kind.host_of(g)} it is {g.shown_state}" + (f" ({g.last_error})" if g.last_error else "")
              for g in obj.process_groups() if g.pk != obj.pk and g.state not in states.GOAL[action]]
    return f"{obj.name}: " + "; ".join(missed) if missed else None


def superseded(obj: ManagedProcess, action: str) -> str | None:
    """After a wait: why the state is not this request's doing, when a later request replaced it."""
    sent = getattr(obj, "sent_seq", None)
    if sent is None or obj.request_seq == sent:
        return None
    later = obj.requested or "another"
    return (
        f"A later {later} request replaced this {action} of {obj.name}; it is now {obj.state}. "
        f"See its Activity page for who asked."
    )


def status_of(obj: ManagedProcess) -> dict[str, Any]:
    """What the CLI and the API report: the state in lower case, pid, the kind's own fields
    (a gateway's server and port), host, since."""
    kind = adapter_of(obj)
    return {
        "name": obj.name,
        # As the pages show it: a start on its way is "starting", not "stopped".
        "state": obj.shown_state,
        # What the keeper last reported, request or not.
        "reported_state": obj.state,
        "pid": obj.pid,
        **kind.status_fields(obj),
        "host": obj.run_host or kind.host_of(obj),
        # Who its processes run as (processes/accounts.py), and whether root was allowed.
        "run_as": obj.run_as or None,
        "runs_as": obj.runs_as,
        "runs_as_root": obj.runs_as_root,
        "since": obj.state_changed_at.isoformat() if obj.state_changed_at else None,
        "in_transition": obj.in_transition,
        # The last request (start, stop or restart) and its number: the state settles where it leads.
        "requested": obj.requested or None,
        "request_seq": obj.request_seq,
        "last_error": obj.last_error or None,
        "time_to_ready": (obj.startup or {}).get("time_to_ready"),
        "restarts": (obj.startup or {}).get("restarts", 0),
    }
