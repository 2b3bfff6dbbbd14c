"""Celery tasks that start, stop and restart gateways on their host, and reconcile.

Each task takes primary keys, re-reads the row, and is safe to run twice: a
double click, a redelivered message or twenty concurrent starts give one
process, because (1) the task claims the start with a conditional UPDATE that
only one can win, and (2) the keeper holds an exclusive lock on the run
directory, so a second keeper for the same gateway cannot exist.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from gateways import runtime, sync
from gateways.models import Gateway
from portal.process import checks, keeper

log = logging.getLogger(__name__)

STARTABLE = {"stopped", "exited", "fatal", "unknown"}
SETTLED = {"running", "fatal", "exited", "stopped"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _done(gateway_pk: int, intent: str) -> None:
    """The request has been acted on: pages stop showing it as in flight."""
    Gateway.objects.filter(pk=gateway_pk, intent=intent).update(intent="")


def preflight(gateway: Gateway) -> checks.CheckFailure | None:
    """What would make a start fail, found before the start: with a message that says the fix."""
    return (
        checks.check_network_exposure(gateway.server, gateway.use_passphrase, gateway.allow_unauthenticated_network)
        or runtime.log_file_problem(gateway)
        or checks.check_python(gateway.python_executable)
        or checks.check_modules(gateway.python_executable, ["msgpack"])
        or checks.check_bind_address(gateway.server)
        or checks.check_port_free(gateway.server, gateway.port)
    )


def _refuse(gateway: Gateway, trigger: str, failure: checks.CheckFailure) -> dict[str, Any]:
    message = f"Start refused: {failure.message}"
    # One transaction: whoever sees the error on the row also finds it in the activity.
    with transaction.atomic():
        sync.record(gateway, message=message, trigger=trigger, level="error", host=settings.PORTAL_HOST_NAME,
                    user=sync.user_of(trigger))
        Gateway.objects.filter(pk=gateway.pk).update(
            last_error=message,
            intent="",
            startup={
                "error": message,
                "check": failure.code,
                "fix": failure.fix,
                "fix_argv": failure.fix_argv,
                "command": runtime.display_command(gateway),
            },
        )
    return {"state": gateway.state, "error": message}


def _warn_open(gateway: Gateway, trigger: str) -> None:
    """An administrator allowed it; each start still says what it means."""
    message = (f"{gateway.name} starts on {gateway.server}:{gateway.port} without a passphrase, open to the "
               "network (allowed by an administrator): anyone who can reach the port can run code as the "
               "portal's user")
    log.warning("%s", message)
    sync.record(gateway, message=message, trigger=trigger, level="warning", host=settings.PORTAL_HOST_NAME,
                user=sync.user_of(trigger))


@shared_task(acks_late=True, ignore_result=True)
def start_gateway(gateway_pk: int, trigger: str = "system") -> dict[str, Any]:
    host = settings.PORTAL_HOST_NAME
    gateway = sync.sync(gateway_pk, host)
    if gateway is None:
        return {"error": "the definition was deleted"}
    if gateway.state not in STARTABLE:
        _done(gateway_pk, "start")
        return {"state": gateway.state, "note": "already active; nothing to do"}
    failure = preflight(gateway)
    if failure:
        return _refuse(gateway, trigger, failure)
    with transaction.atomic():
        # The claim: of several tasks racing to start this gateway, one wins.
        claimed = Gateway.objects.filter(pk=gateway_pk, state__in=STARTABLE).update(
            state="starting", state_changed_at=_now(), run_host=host, last_error="", startup={}
        )
    if not claimed:
        # The task that won the claim clears the intent when it is done.
        return {"state": "starting", "note": "another task is starting it"}
    gateway.refresh_from_db()
    if gateway.open_to_network:
        _warn_open(gateway, trigger)
    rd = runtime.run_dir(gateway)
    try:
        keeper.launch(runtime.build_spec(gateway), rd, trigger=trigger)
    except keeper.KeeperBusy:
        sync.sync(gateway_pk, host)
        _done(gateway_pk, "start")
        return {"state": "starting", "note": "its keeper is already running"}
    except keeper.AlreadyRunning as e:
        keeper.adopt(rd)
        sync.record(gateway, message=f"Re-adopted: {e}", trigger="reconcile", level="warning", host=host)
    except (keeper.KeeperError, OSError) as e:
        Gateway.objects.filter(pk=gateway_pk).update(state="stopped", last_error=f"Start failed: {e}", intent="")
        sync.record(gateway, message=f"Start failed: {e}", trigger=trigger, level="error", host=host)
        return {"state": "stopped", "error": str(e)}
    status = keeper.wait_for(rd, SETTLED | {"backoff"}, timeout=gateway.init_timeout + 2)
    sync.sync(gateway_pk, host)
    _done(gateway_pk, "start")
    return {"state": status.get("state"), "pid": status.get("pid"), "time_to_ready": status.get("time_to_ready")}


@shared_task(acks_late=True, ignore_result=True)
def stop_gateway(gateway_pk: int, trigger: str = "system") -> dict[str, Any]:
    host = settings.PORTAL_HOST_NAME
    gateway = sync.sync(gateway_pk, host)
    if gateway is None:
        return {"error": "the definition was deleted"}
    rd = runtime.run_dir(gateway)
    if keeper.read_status(rd) is None:
        Gateway.objects.filter(pk=gateway_pk).update(intent="", state="stopped")
        return {"state": "stopped"}
    keeper.request_stop(rd, timeout=gateway.stop_timeout + 5, trigger=trigger)
    gateway = sync.sync(gateway_pk, host)
    _done(gateway_pk, "stop")
    return {"state": gateway.state if gateway else "stopped"}


@shared_task(acks_late=True, ignore_result=True)
def restart_gateway(gateway_pk: int, trigger: str = "system") -> dict[str, Any]:
    stop_gateway(gateway_pk, trigger)
    Gateway.objects.filter(pk=gateway_pk).update(intent="start", intent_at=_now())
    return start_gateway(gateway_pk, trigger)


@shared_task
def install_server_requirements(gateway_pk: int, trigger: str = "system") -> dict[str, Any]:
    """The button beside "that interpreter lacks msgpack": run the install command, on the host."""
    gateway = Gateway.objects.filter(pk=gateway_pk).first()
    if gateway is None:
        return {"error": "the definition was deleted"}
    failure = checks.check_modules(gateway.python_executable, ["msgpack"])
    if failure is None or not failure.fix_argv:
        return {"ok": True, "note": "nothing to install"}
    import subprocess

    argv = failure.fix_argv
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    ok = result.returncode == 0 and checks.check_modules(gateway.python_executable, ["msgpack"]) is None
    tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
    message = f"{runtime.shell_words(argv)} {'succeeded' if ok else 'failed'}" + (
        "" if ok else f": {' / '.join(tail)}"
    )
    sync.record(gateway, message=message, trigger=trigger, level="info" if ok else "error",
                host=settings.PORTAL_HOST_NAME, user=sync.user_of(trigger))
    if ok:
        Gateway.objects.filter(pk=gateway_pk).update(last_error="", startup={})
    return {"ok": ok, "message": message}


@shared_task(ignore_result=True)
def reconcile_all() -> int:
    """Beat's job: ask every host that runs gateways to reconcile its own."""
    from portal.queues import host_queue

    hosts = set(Gateway.objects.exclude(run_host="").values_list("run_host", flat=True))
    hosts.add(settings.PORTAL_HOST_NAME)
    for host in hosts:
        # expires: a host without a worker must not pile up reconciles for later.
        reconcile_host.apply_async(args=[host], queue=host_queue(host), expires=10)
    return len(hosts)


@shared_task(ignore_result=True)
def reconcile_host(host: str | None = None) -> dict[str, int]:
    """Make the database true for this host's gateways; adopt orphans; restart the dead by policy."""
    from gateways.watcher import reconcile_local

    return reconcile_local(host or settings.PORTAL_HOST_NAME)
