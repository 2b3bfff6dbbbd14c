"""A web application's own task: the install button beside "this interpreter cannot run the engine".

Start, stop and restart are processes/tasks.py's, for every kind.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from processes import sync
from processes.tasks import run_install
from webapps import adapter
from webapps.models import WebApp
from webapps.runtime import engines


def set_install(pk: int, install: dict[str, Any] | None, *, clear_check: bool = False) -> None:
    """Write ``startup["install"]`` with the row locked, as sync does: no lost update."""
    with transaction.atomic():
        webapp = WebApp.objects.select_for_update().filter(pk=pk).first()
        if webapp is None:
            return
        startup = {k: v for k, v in webapp.startup.items() if k != "install"}
        fields = ["startup"]
        if clear_check and startup.get("check") == "engine-missing":
            # The interpreter now has its engine: the refusal, and the button, go.
            startup = {k: v for k, v in startup.items() if k not in {"error", "check", "fix", "fix_argv"}}
            webapp.last_error = ""
            fields.append("last_error")
        if install is not None:
            startup["install"] = install
        webapp.startup = startup
        webapp.save(update_fields=fields)


@shared_task(acks_late=True, ignore_result=True)
def build_virtualenv(pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    """A start's virtualenv build, on the host's build worker (portal.queues.build_queue): pip may
    take minutes, and the start slots stay free meanwhile. Built, it starts the application (the
    start task's own code, which finds the virtualenv current); not built, the start is refused."""
    from processes import tasks as process_tasks

    webapp = WebApp.objects.filter(pk=pk).first()
    if webapp is None:
        return {"error": "the definition was deleted"}
    if seq is not None and not WebApp.objects.filter(pk=pk, request_seq=seq).exists():
        return process_tasks.SUPERSEDED
    from portal.process.accounts import AccountError
    from portal.process.checks import CheckFailure

    try:
        account = adapter.WebAppAdapter().prepare_account(webapp)
    except AccountError as e:
        return process_tasks.refuse_start(webapp, trigger, CheckFailure("account", str(e)), seq)
    failure = adapter.ensure_virtualenv(webapp, account)
    if failure is not None:
        return process_tasks.refuse_start(webapp, trigger, failure, seq)
    return process_tasks.start("webapp", pk, trigger, seq)


@shared_task(ignore_result=True)
def install_engine(pk: int, trigger: str = "system") -> dict[str, Any]:
    """Install the application's engine into its interpreter, on the host. The command is the one
    the check computes now (never one read back from the row), so the button runs only
    ``python -m pip install <engine>``. A task: pip may take minutes."""
    webapp = WebApp.objects.filter(pk=pk).first()
    if webapp is None:
        return {"error": "the definition was deleted"}
    python, engine = adapter.python_of(webapp), webapp.engine_name
    failure = engines.check_engine(python, engine)
    if failure is None or not failure.fix_argv:
        ok = failure is None
        message = (f"Nothing to install: {python} already runs {engine}" if ok
                   else f"Nothing was installed: {failure.message}")
    else:
        command = engines.install_command(python, engine)
        code, tail = run_install(failure.fix_argv)
        ok = code == 0 and engines.check_engine(python, engine) is None
        if ok:
            message = f"{command} succeeded: {python} now runs {engine}. Start {webapp.name} again."
        else:
            why = f"exit {code}" if code is not None else "did not finish"
            message = f"{command} failed ({why}): {' / '.join(tail) or 'no output'}"
    sync.record(webapp, message=message, trigger=trigger, level="info" if ok else "error",
                host=settings.PORTAL_HOST_NAME, user=sync.user_of(trigger))
    set_install(pk, {"state": "done" if ok else "failed", "message": message,
                     "at": dt.datetime.now(dt.UTC).isoformat()}, clear_check=ok)
    return {"ok": ok, "message": message}
