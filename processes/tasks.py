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
from portal.process import checks, keeper, lock
from portal.process.states import DOWN, STARTABLE, STARTING, STOPPED, STOPPING

log = logging.getLogger(__name__)

# How long a task waits for the task before it on the same gateway (a launch or a stop).
LOCK_WAIT = 120.0
# How long a stop task waits for the keeper to stop before leaving the rest to the watcher.
STOP_WAIT = 3.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _latest(gateway_pk: int, seq: int | None) -> bool:
    """Is the request this task was sent for still the gateway's latest? (None: a task
    not tied to a request, e.g. from an older portal: it acts.)"""
    if seq is None:
        return True
    return Gateway.objects.filter(pk=gateway_pk, request_seq=seq).exists()


def _of_request(gateway_pk: int, seq: int | None) -> Any:
    """The row, if ``seq`` is still its latest request: writes through this act for that request only."""
    rows = Gateway.objects.filter(pk=gateway_pk)
    return rows if seq is None else rows.filter(request_seq=seq)


def _done(gateway_pk: int, seq: int | None) -> None:
    """The request has been acted on: pages stop showing it as in flight. A later
    request's intent stays: its own task clears it."""
    _of_request(gateway_pk, seq).update(intent="")


SUPERSEDED = {"note": "a later request replaced this one; nothing done"}


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


def refuse_start(gateway: Gateway, trigger: str, failure: checks.CheckFailure, seq: int | None) -> dict[str, Any]:
    message = f"Start refused: {failure.message}"
    # One transaction: whoever sees the error on the row also finds it in the activity.
    with transaction.atomic():
        sync.record(gateway, message=message, trigger=trigger, level="error", host=settings.PORTAL_HOST_NAME,
                    user=sync.user_of(trigger))
        _of_request(gateway.pk, seq).update(
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


def _serialized(gateway: Gateway, work: Any) -> Any:
    """Run ``work()`` holding the gateway's control lock on this host: one launch or stop at a time."""
    try:
        with lock.control_lock(runtime.run_dir(gateway), timeout=LOCK_WAIT):
            return work()
    except lock.LockTimeout as e:
        message = f"Not done: another start or stop of {gateway.name} is still busy ({e}); try again."
        sync.record(gateway, message=message, trigger="system", level="error", host=settings.PORTAL_HOST_NAME)
        return {"error": message}


@shared_task(acks_late=True, ignore_result=True)
def start_gateway(gateway_pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    gateway = Gateway.objects.filter(pk=gateway_pk).first()
    if gateway is None:
        return {"error": "the definition was deleted"}
    if not _latest(gateway_pk, seq):
        return SUPERSEDED
    result = _serialized(gateway, lambda: _start_locked(gateway_pk, trigger, seq))
    if result.get("launched"):
        # Not waited for: the server may take up to its init timeout (300 s) to be ready, and
        # this worker has two slots. The watcher copies the outcome into the row and clears
        # the request's intent then (sync.settle_request, through the "request" the claim wrote).
        return {"state": STARTING, "launched": True}
    return result


def _start_locked(gateway_pk: int, trigger: str, seq: int | None) -> dict[str, Any]:
    host = settings.PORTAL_HOST_NAME
    gateway = sync.sync(gateway_pk, host)
    if gateway is None:
        return {"error": "the definition was deleted"}
    if not _latest(gateway_pk, seq):
        return SUPERSEDED
    rd = runtime.run_dir(gateway)
    if gateway.state == STOPPING:
        # A stop that is not ours is still under way (its keeper ends it): let it finish, then start.
        keeper.wait_for(rd, DOWN, timeout=gateway.stop_timeout + 5)
        gateway = sync.sync(gateway_pk, host) or gateway
    if gateway.state not in STARTABLE:
        _done(gateway_pk, seq)
        return {"state": gateway.state, "note": "already active; nothing to do"}
    failure = preflight(gateway)
    if failure:
        return refuse_start(gateway, trigger, failure, seq)
    with transaction.atomic():
        # The claim, and the last check that this request is still the latest one.
        claimed = _of_request(gateway_pk, seq).filter(state__in=STARTABLE).update(
            state=STARTING, state_changed_at=_now(), run_host=host, last_error="",
            startup={"request": sync.awaiting(seq, "start")},
        )
    if not claimed:
        if not _latest(gateway_pk, seq):
            return SUPERSEDED
        _done(gateway_pk, seq)
        return {"state": STARTING, "note": "another task is starting it"}
    gateway.refresh_from_db()
    if gateway.open_to_network:
        _warn_open(gateway, trigger)
    try:
        keeper.launch(runtime.build_spec(gateway), rd, trigger=trigger)
    except keeper.KeeperBusy:
        sync.sync(gateway_pk, host)
        _done(gateway_pk, seq)
        return {"state": STARTING, "note": "its keeper is already running"}
    except keeper.AlreadyRunning as e:
        keeper.adopt(rd)
        sync.record(gateway, message=f"Re-adopted: {e}", trigger="reconcile", level="warning", host=host)
    except (keeper.KeeperError, OSError) as e:
        Gateway.objects.filter(pk=gateway_pk).update(state=STOPPED, last_error=f"Start failed: {e}")
        _done(gateway_pk, seq)
        sync.record(gateway, message=f"Start failed: {e}", trigger=trigger, level="error", host=host)
        return {"state": STOPPED, "error": str(e)}
    return {"launched": True}


def _stop(gateway_pk: int, trigger: str, seq: int | None, finish: bool = True) -> dict[str, Any]:
    gateway = Gateway.objects.filter(pk=gateway_pk).first()
    if gateway is None:
        return {"error": "the definition was deleted"}
    if not _latest(gateway_pk, seq):
        return SUPERSEDED
    return _serialized(gateway, lambda: _stop_locked(gateway_pk, trigger, seq, finish))


def _stop_locked(gateway_pk: int, trigger: str, seq: int | None, finish: bool) -> dict[str, Any]:
    host = settings.PORTAL_HOST_NAME
    gateway = sync.sync(gateway_pk, host)
    if gateway is None:
        return {"error": "the definition was deleted"}
    if not _latest(gateway_pk, seq):
        return SUPERSEDED
    rd = runtime.run_dir(gateway)
    if keeper.read_status(rd) is None:
        _of_request(gateway_pk, seq).update(state=STOPPED, **({"intent": ""} if finish else {}))
        return {"state": STOPPED}
    if finish:
        # Written before the signal: a stop slower than STOP_WAIT is then settled by the watcher.
        sync.await_request(gateway_pk, seq, "stop")
    # A bounded wait: most servers stop in well under a second, and the task then reports the
    # outcome itself; one slow to stop (up to its stop timeout, 300 s, before SIGKILL) does not
    # hold a worker slot that long. A restart waits in full: its start must follow the stop.
    wait = gateway.stop_timeout + 5 if not finish else min(STOP_WAIT, gateway.stop_timeout + 5)
    keeper.request_stop(rd, timeout=wait, trigger=trigger)
    gateway = sync.sync(gateway_pk, host)
    state = gateway.state if gateway else STOPPED
    if finish and state in DOWN:
        _done(gateway_pk, seq)
    return {"state": state}


@shared_task(acks_late=True, ignore_result=True)
def stop_gateway(gateway_pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return _stop(gateway_pk, trigger, seq)


@shared_task(acks_late=True, ignore_result=True)
def restart_gateway(gateway_pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    result = _stop(gateway_pk, trigger, seq, finish=False)
    if result is SUPERSEDED or result.get("error"):
        return result
    return start_gateway(gateway_pk, trigger, seq)


# The install button: seconds the command may take (pip may build from source).
INSTALL_TIMEOUT = 600
INSTALL_TAIL = 5  # lines of output kept when it fails


def set_install(gateway_pk: int, install: dict[str, Any] | None, **fields: Any) -> None:
    """Write ``startup["install"]`` (and ``fields``) with the row locked, as sync does: no lost update."""
    with transaction.atomic():
        gateway = Gateway.objects.select_for_update().filter(pk=gateway_pk).first()
        if gateway is None:
            return
        startup = {k: v for k, v in gateway.startup.items() if k != "install"}
        if fields.pop("clear_check", False) and startup.get("check") == "modules-missing":
            # The interpreter has what it lacked: its refusal, and the button, go.
            startup = {k: v for k, v in startup.items() if k not in {"error", "check", "fix", "fix_argv"}}
            fields["last_error"] = ""
        if install is not None:
            startup["install"] = install
        gateway.startup = startup
        for name, value in fields.items():
            setattr(gateway, name, value)
        gateway.save(update_fields=["startup", *fields])


@shared_task(ignore_result=True)
def install_server_requirements(gateway_pk: int, trigger: str = "system") -> dict[str, Any]:
    """The button beside "that interpreter lacks msgpack": run the install command, on the host.

    A task, never a web request: pip may take minutes. The outcome goes to the row
    (``startup["install"]``, shown by the detail page) and to the Activity.
    """
    import subprocess

    gateway = Gateway.objects.filter(pk=gateway_pk).first()
    if gateway is None:
        return {"error": "the definition was deleted"}
    host = settings.PORTAL_HOST_NAME
    python = gateway.python_executable
    failure = checks.check_modules(python, ["msgpack"])
    if failure is None or not failure.fix_argv:
        message = (f"Nothing to install: {python} already imports msgpack" if failure is None
                   else f"Nothing was installed: {failure.message}")
        ok = failure is None
    else:
        command = runtime.shell_words(failure.fix_argv)
        try:
            result = subprocess.run(failure.fix_argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                                    stdin=subprocess.DEVNULL, check=False)
            output, code = (result.stdout + result.stderr).strip(), result.returncode
        except subprocess.TimeoutExpired as e:
            output, code = f"{e.output or ''}\nstopped after {INSTALL_TIMEOUT} s", None
        except OSError as e:
            output, code = str(e), None
        ok = code == 0 and checks.check_modules(python, ["msgpack"]) is None
        tail = [line for line in output.splitlines() if line.strip()][-INSTALL_TAIL:]
        if ok:
            message = f"{command} succeeded: {python} now imports msgpack. Start {gateway.name} again."
        else:
            why = f"exit {code}" if code is not None else "did not finish"
            message = f"{command} failed ({why}): {' / '.join(tail) or 'no output'}"
    sync.record(gateway, message=message, trigger=trigger, level="info" if ok else "error", host=host,
                user=sync.user_of(trigger))
    install = {"state": "done" if ok else "failed", "message": message, "at": _now().isoformat()}
    if ok:
        set_install(gateway_pk, install, clear_check=True)
    else:
        set_install(gateway_pk, install)
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
