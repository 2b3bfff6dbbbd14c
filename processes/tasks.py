"""Celery tasks for managed processes of every kind: start, stop, restart, reconcile, install.

Each task takes the kind (an adapter's ``kind``, e.g. "gateway") and a primary key,
re-reads the row, and is safe to run twice. The start pipeline, stop and restart are
processes/pipeline.py's (the names below are kept for the code that imports them from here);
the install button's task is :func:`install_requirements`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction

from portal.process.states import RESTART, START, STOP
from processes import sync
from processes.adapters import adapter_for, all_adapters
from processes.pipeline import (  # noqa: F401  (the names code imported from here)
    SUPERSEDED,
    preflight,
    refuse_start,
    restart,
    start,
    stop,
)
from processes.watcher import reconcile_local


@shared_task(acks_late=True, ignore_result=True)
def start_process(kind: str, pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return start(kind, pk, trigger, seq)


@shared_task(acks_late=True, ignore_result=True)
def stop_process(kind: str, pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return stop(kind, pk, trigger, seq)


@shared_task(acks_late=True, ignore_result=True)
def restart_process(kind: str, pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return restart(kind, pk, trigger, seq)


TASKS = {START: start_process, STOP: stop_process, RESTART: restart_process}


@shared_task(ignore_result=True)
def reconcile_all() -> int:
    """Beat's job: ask every host that runs managed processes (of every kind) to reconcile its own."""
    from portal.queues import host_queue

    hosts = {settings.PORTAL_HOST_NAME}
    for kind in all_adapters():
        hosts |= set(kind.model.groups.exclude(run_host="").values_list("run_host", flat=True))
    for host in hosts:
        # expires: a host without a worker must not pile up reconciles for later.
        reconcile_host.apply_async(args=[host], queue=host_queue(host), expires=10)
    return len(hosts)


@shared_task(ignore_result=True)
def reconcile_host(host: str | None = None) -> dict[str, int]:
    """Make the database true for this host's processes; adopt orphans; restart the dead by policy."""
    return reconcile_local(host or settings.PORTAL_HOST_NAME)


# --- the install button ----------------------------------------------------------------------

# Seconds the command may take (pip may build from source).
INSTALL_TIMEOUT = 600
INSTALL_TAIL = 5  # lines of output kept when it fails


def set_install(kind: str, pk: int, install: dict[str, Any] | None, *, clear_check: bool = False) -> None:
    """Write ``startup["install"]`` with the row locked, as sync does: no lost update. ``clear_check``:
    the interpreter now has what it lacked, so the refusal the install answered (and its button) goes."""
    adapter = adapter_for(kind)
    with transaction.atomic():
        obj = adapter.model.groups.select_for_update().filter(pk=pk).first()
        if obj is None:
            return
        startup = {k: v for k, v in obj.startup.items() if k != "install"}
        fields = ["startup"]
        plan = adapter.install_of(obj)
        if clear_check and plan is not None and startup.get("check") == plan.refusal:
            startup = {k: v for k, v in startup.items() if k not in {"error", "check", "fix", "fix_argv"}}
            obj.last_error = ""
            fields.append("last_error")
        if install is not None:
            startup["install"] = install
        obj.startup = startup
        obj.save(update_fields=fields)


def run_install(argv: list[str]) -> tuple[int | None, list[str]]:
    """Run an install command (never through a shell): its exit code (None when it did not
    finish) and its last lines of output."""
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


@shared_task
def check_paths(wanted: list[list[str]]) -> list[str]:
    """What this host lacks of ``wanted``: [what, path, "folder" | "file" | "program"] each; one
    line per missing or wrong path, for a definition's form on another host (processes/hosts.py)."""
    import os

    missing = []
    for what, path, form in wanted:
        if form == "folder" and not os.path.isdir(path):
            missing.append(f"the {what} {path} ({'not a folder' if os.path.exists(path) else 'missing'})")
        elif form == "file" and not os.path.isfile(path):
            missing.append(f"the {what} {path} ({'not a file' if os.path.exists(path) else 'missing'})")
        elif form == "program" and not (os.path.isfile(path) and os.access(path, os.X_OK)):
            missing.append(f"the {what} {path} ({'not a program' if os.path.exists(path) else 'missing'})")
    return missing


@shared_task
def read_log(kind: str, pk: int, lines: int = 100) -> dict[str, Any]:
    """The end of a process's log on this host, for its page on another host (processes/logs.py)."""
    from processes.logs import local_tail

    adapter = adapter_for(kind)
    obj = adapter.model.groups.filter(pk=pk).first()
    if obj is None:
        return {"lines": [], "error": "the definition was deleted"}
    found, error = local_tail(adapter, obj, min(max(int(lines), 1), 1000))
    return {"lines": found, "error": error, "path": str(adapter.log_path(obj))}


@shared_task(ignore_result=True)
def install_requirements(kind: str, pk: int, trigger: str = "system") -> dict[str, Any]:
    """The button beside "this interpreter lacks msgpack" (a gateway) or "cannot run the engine"
    (a web application): install what the kind's adapter says is missing (``adapter.install_of``),
    on the host. The command is the one the check computes now, never one read back from the
    row. A task, never a web request: pip may take minutes. The outcome goes to the row
    (``startup["install"]``, shown by the detail page) and to the Activity."""
    adapter = adapter_for(kind)
    obj = adapter.model.groups.filter(pk=pk).first()
    if obj is None:
        return {"error": "the definition was deleted"}
    plan = adapter.install_of(obj)
    failure = plan.check() if plan is not None else None
    if plan is None or failure is None or not failure.fix_argv:
        ok = plan is not None and failure is None
        if plan is None:
            message = f"Nothing was installed: a {adapter.label} has nothing to install"
        elif ok:
            message = f"Nothing to install: {plan.python} already {plan.has}"
        else:
            message = f"Nothing was installed: {failure.message}"
    else:
        command = plan.command(failure.fix_argv)
        code, tail = run_install(failure.fix_argv)
        ok = code == 0 and plan.check() is None
        if ok:
            message = f"{command} succeeded: {plan.python} now {plan.has}. Start {obj.name} again."
        else:
            why = f"exit {code}" if code is not None else "did not finish"
            message = f"{command} failed ({why}): {' / '.join(tail) or 'no output'}"
    sync.record(obj, message=message, trigger=trigger, level="info" if ok else "error",
                host=settings.PORTAL_HOST_NAME, user=sync.user_of(trigger))
    set_install(kind, pk, {"state": "done" if ok else "failed", "message": message,
                           "at": dt.datetime.now(dt.UTC).isoformat()}, clear_check=ok)
    return {"ok": ok, "message": message}
