"""Start, stop and restart: the service functions that views, the CLI and the API share.

A request checks the actor's role, records the intent (on the row and as an
Activity line) and hands the work to a Celery task on the queue of the host
where the gateway lives. The task does the checks and launches or signals the
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
from django.db.models import F, Q
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from gateways import runtime, sync
from gateways.models import Gateway
from portal import audit, health, roles
from portal.process import checks, states

ACTIONS = ("start", "stop", "restart")


class ControlError(Exception):
    """A request that cannot be carried out; the message says why and what to do."""


def trigger_for(user: Any, channel: str = "web") -> str:
    """How the request is recorded: "ada" from the pages, "api:ada", "cli:ada"."""
    name = audit.actor_name(user)
    if channel == "web" or name.startswith("cli:"):
        return name
    return f"{channel}:{name}"


def _require_operator(user: Any) -> None:
    if not roles.can_operate(user):
        raise PermissionDenied(
            "Only an Operator or an Administrator may start and stop gateways; ask an administrator for "
            "that role."
        )


def request(gateway: Gateway, action: str, user: Any, channel: str = "web") -> Gateway:
    """Record the intent and send the task to the gateway's host. Returns the updated row."""
    from gateways import tasks

    if action not in ACTIONS:
        raise ControlError(f"Unknown action {action!r}: use start, stop or restart.")
    _require_operator(user)
    trigger = trigger_for(user, channel)
    now = dt.datetime.now(dt.UTC)
    intent = "stop" if action == "stop" else "start"
    seq = _take_number(gateway, intent, action, now)
    unknown = _unknown_host(gateway)
    if unknown is not None:
        return _answer_at_once(gateway, action, trigger, user, now, seq, unknown)
    task = {"start": tasks.start_gateway, "stop": tasks.stop_gateway, "restart": tasks.restart_gateway}[action]
    try:
        # Ask the broker first, briefly: Celery's own retries would keep the user waiting.
        health.redis_client(1.0).ping()
        task.apply_async(
            args=[gateway.pk, trigger, seq],
            queue=runtime.queue_of(gateway),
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        )
    except (OperationalError, RedisError) as e:
        # Not sent: nothing is requested (the number stays used, so older tasks still yield).
        Gateway.objects.filter(pk=gateway.pk, request_seq=seq).update(intent="", requested="")
        raise ControlError(
            f"The {action} of {gateway.name} was not sent: the task broker does not answer ({e}). "
            "Check that Redis and a worker run (`make run` starts both)."
        ) from None
    gateway.refresh_from_db()
    gateway.sent_seq = seq  # this request's number; the row's may already be a later one
    sync.record(
        gateway,
        message=f"{action.capitalize()} requested",
        trigger=trigger,
        user=audit.account_of(user),
        host=runtime.host_of(gateway),
        at=now,
    )
    return gateway


def _unknown_host(gateway: Gateway) -> checks.CheckFailure | None:
    """A server name of another host that does not exist: no worker can serve its queue.

    Its task would wait in that queue for ever, the gateway "Starting" with no word,
    so the request is answered here, at once. (A name that the name service could not
    answer for now is sent on: its host's worker checks it again.)
    """
    if runtime.host_of(gateway) == settings.PORTAL_HOST_NAME:
        return None  # this host's worker checks the name before the start
    failure = checks.check_host_resolves(gateway.server)
    return failure if failure is not None and failure.code == "address-unknown" else None


def _answer_at_once(gateway: Gateway, action: str, trigger: str, user: Any, now: dt.datetime, seq: int,
                    failure: checks.CheckFailure) -> Gateway:
    from gateways import tasks

    sync.record(gateway, message=f"{action.capitalize()} requested", trigger=trigger,
                user=audit.account_of(user), host=settings.PORTAL_HOST_NAME, at=now)
    if action == "stop" and not gateway.is_active:
        Gateway.objects.filter(pk=gateway.pk, request_seq=seq).update(intent="")  # nothing runs: nothing to stop
    elif action == "stop":
        Gateway.objects.filter(pk=gateway.pk, request_seq=seq).update(intent="", last_error=failure.message)
        sync.record(gateway, message=f"Stop not sent: {failure.message}", trigger=trigger, level="error",
                    host=settings.PORTAL_HOST_NAME, user=audit.account_of(user))
    else:
        tasks.refuse_start(gateway, trigger, failure, seq)
    gateway.refresh_from_db()
    gateway.sent_seq = seq
    return gateway


def _take_number(gateway: Gateway, intent: str, action: str, now: dt.datetime) -> int:
    """Record the request with the next number: the last request wins.

    One write transaction: the UPDATE holds the row (PostgreSQL) or the database
    (SQLite, IMMEDIATE) until commit, so the number read back is this request's.
    """
    with transaction.atomic():
        Gateway.objects.filter(pk=gateway.pk).update(
            intent=intent, intent_at=now, requested=action, request_seq=F("request_seq") + 1
        )
        return Gateway.objects.filter(pk=gateway.pk).values_list("request_seq", flat=True).get()


def check_definition_change(gateway: Gateway, changed: list[str]) -> None:
    """Refuse a change that the running process would not follow (or a delete)."""
    from gateways.models import RUNTIME_FIELDS

    if not gateway.is_active:
        return
    needs_stop = [f for f in changed if f in RUNTIME_FIELDS]
    if needs_stop:
        fields = ", ".join(f.replace("_", " ") for f in needs_stop)
        raise ControlError(
            f"{gateway.name} is {gateway.state}: stop {gateway.name} first, then change {fields}. "
            "The running server would not follow a changed definition."
        )


def active_gateways_on(host: str) -> Any:
    return Gateway.objects.filter(Q(run_host=host) & (Q(state__in=states.ACTIVE) | Q(intent="start")))


def wait_settled(gateway: Gateway, action: str, timeout: float) -> Gateway:
    """Wait until the latest request has been acted on and the state has settled where it leads.

    The latest request: when another request came after this one, the state it asks
    for is the one that will last, so that is what is waited for (see ``superseded``).
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        gateway.refresh_from_db()
        goal = gateway.requested or action
        if not gateway.intent and gateway.state in states.SETTLED_AFTER[goal]:
            return gateway
        if time.monotonic() > deadline:
            raise ControlError(
                f"{gateway.name} is still {gateway.state} after {timeout:g} s: is a worker running for host "
                f"{runtime.host_of(gateway)}? See the Activity page."
            )
        time.sleep(0.02)


def superseded(gateway: Gateway, action: str) -> str | None:
    """After a wait: why the state is not this request's doing, when a later request replaced it."""
    sent = getattr(gateway, "sent_seq", None)
    if sent is None or gateway.request_seq == sent:
        return None
    later = gateway.requested or "another"
    return (
        f"A later {later} request replaced this {action} of {gateway.name}; it is now {gateway.state}. "
        f"See its Activity page for who asked."
    )


def status_of(gateway: Gateway) -> dict[str, Any]:
    """What the CLI and the API report: the state in lower case, pid, port, since."""
    return {
        "name": gateway.name,
        # As the pages show it: a start on its way is "starting", not "stopped".
        "state": gateway.shown_state,
        # What the keeper last reported, request or not.
        "reported_state": gateway.state,
        "pid": gateway.pid,
        "server": gateway.server,
        "port": gateway.port,
        "host": gateway.run_host or runtime.host_of(gateway),
        "since": gateway.state_changed_at.isoformat() if gateway.state_changed_at else None,
        "in_transition": gateway.in_transition,
        # The last request (start, stop or restart) and its number: the state settles where it leads.
        "requested": gateway.requested or None,
        "request_seq": gateway.request_seq,
        "last_error": gateway.last_error or None,
        "time_to_ready": (gateway.startup or {}).get("time_to_ready"),
        "restarts": (gateway.startup or {}).get("restarts", 0),
    }
