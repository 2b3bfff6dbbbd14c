"""A gateway's own task: the install button.

Start, stop, restart and reconcile are processes/tasks.py's, for every kind.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from gateways import runtime
from gateways.models import Gateway
from portal.process import checks
from processes import sync
from processes.tasks import run_install


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
    gateway = Gateway.objects.filter(pk=gateway_pk).first()
    if gateway is None:
        return {"error": "the definition was deleted"}
    host = settings.PORTAL_HOST_NAME
    python = gateway.interpreter
    failure = checks.check_modules(python, ["msgpack"])
    if failure is None or not failure.fix_argv:
        message = (f"Nothing to install: {python} already imports msgpack" if failure is None
                   else f"Nothing was installed: {failure.message}")
        ok = failure is None
    else:
        command = runtime.shell_words(failure.fix_argv)
        code, tail = run_install(failure.fix_argv)
        ok = code == 0 and checks.check_modules(python, ["msgpack"]) is None
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
