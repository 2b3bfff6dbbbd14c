"""Merging a 1,000-definition merge file: dry run and apply, against baselines of the same run.

    .venv/bin/python bench/cpf.py [--count N] [--apps N] [--repeats R] [--markdown FILE]

A private environment made for the run and removed after it: a temporary PORTAL_VAR_DIR with
its own SQLite database (WAL, IMMEDIATE transactions, as in production), ``manage.py migrate``.
No worker and no Redis: a merge of stopped definitions sends no task.

The file creates N gateways (default 1,000) on 127.0.0.1, ports 20000 upwards, with Python
options and a restart policy. Measured, each the median of R runs (default 3), in this process:

- parse: portal.cpf.parser.parse with the registry's schema (no database): the floor.
- service baseline: the same N definitions created one by one through GatewayForm and
  processes.services.save_definition, in one transaction, as a script calling the service would
  (and as a merge did before it read the names and ports once and wrote its rows together).
- merge, dry run (N creates): every line through the form and the service, rolled back.
- merge, apply (N creates), then the same file again (N "already as asked").
- merge, dry run and apply of N ModifyGateway lines (StopTimeout changes on every definition).
- export of the N definitions.
- the same for N web applications (``--apps N``, default the same N; 0 leaves them out): a file
  of N CreateApplication lines, each mounting the same small WSGI application (one folder, one
  module) at its own path, then N ModifyApplication lines. Their import check starts the
  application's interpreter; its CPU time is counted (the figures add the finished children's).

Each figure is given as wall-clock and CPU ms, CPU ms per definition, and the ratios of its CPU
and wall-clock times to the service baseline's of the same run: a ratio near 1 means the merge
costs what creating the definitions one by one through the pages' service costs. On shared
cores the CPU figures and the ratios are the ones to compare; the machine's load is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _portal_env import private_portal  # bench/ is the script's folder, first on sys.path

VAR = private_portal("portal-bench-cpf-")

import django

django.setup()

from django.core.management import call_command
from django.db import transaction

from gateways.forms import GatewayForm
from gateways.models import Gateway
from portal.cli import CliOperator
from portal.cpf import merge, registry
from portal.cpf.parser import parse
from processes import services

USER = CliOperator()


class Rollback(Exception):
    pass


def create_file(count: int) -> str:
    lines = [f"CreateGateway:Name=G{i:04d},AllowNoPassphrase=1,Port={20000 + i},PythonOptions=-X dev,"
             "RestartPolicy=always" for i in range(count)]
    return "[Actions]\n" + "\n".join(lines) + "\n"


def modify_file(count: int) -> str:
    return "[Actions]\n" + "\n".join(f"ModifyGateway:Name=G{i:04d},StopTimeout=9" for i in range(count)) + "\n"


def app_file(count: int, folder: Path) -> str:
    lines = [f"CreateApplication:Name=/a{i:04d},WSGIAppLocation={folder},WSGIAppName=app,WSGICallable=app,"
             "WSGIType=0,Workers=1" for i in range(count)]
    return "[Actions]\n" + "\n".join(lines) + "\n"


def app_modify_file(count: int) -> str:
    return "[Actions]\n" + "\n".join(f"ModifyApplication:Name=/a{i:04d},StopTimeout=9" for i in range(count)) + "\n"


def cpu_seconds() -> float:
    """This process's CPU time and its finished children's (an application's import check)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(action: Callable[[], object], repeats: int,
          before: Callable[[], None] | None = None) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds. The CPU time (this process's, SQLite included: it
    runs in the process, and its children's) hardly moves when other programs share the cores;
    the wall clock does."""
    walls, cpus = [], []
    for _ in range(repeats):
        if before:
            before()
        start, cpu = time.perf_counter(), cpu_seconds()
        action()
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_seconds() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def clear() -> None:
    Gateway.objects.all().delete()


def through_the_service(count: int) -> None:
    """The baseline: the definitions created through the form and the service, rolled back."""
    try:
        with transaction.atomic():
            for i in range(count):
                form = GatewayForm({"type": "python", "name": f"G{i:04d}", "server": "127.0.0.1",
                                    "port": 20000 + i, "python_options": "-X dev", "restart_policy": "always",
                                    "connection_timeout": 5, "init_timeout": 5, "stop_timeout": 5},
                                   check_ports=False)
                assert form.is_valid(), form.errors
                services.save_definition(form, USER)
            raise Rollback
    except Rollback:
        pass


def expect(result: merge.Result, **counts: int) -> merge.Result:
    assert not result.problems, result.problems[:3]
    for op, n in counts.items():
        assert result.counts[op] == n, (op, result.counts)
    return result


def applications(count: int, repeats: int) -> list[tuple[str, tuple[float, float]]]:
    from webapps.models import WebApp

    folder = Path(tempfile.mkdtemp(prefix="portal-bench-cpf-app-"))
    try:
        (folder / "app.py").write_text(
            "def app(environ, start_response):\n"
            "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
            "    return [b'ok']\n")
        created, modified = app_file(count, folder), app_modify_file(count)

        def clear_apps() -> None:
            WebApp.objects.all().delete()

        rows = [("applications: merge --dry-run, creates", timed(
            lambda: expect(merge.merge(created, USER), created=count), repeats, before=clear_apps))]
        rows.append(("applications: merge, apply, creates", timed(
            lambda: expect(merge.merge(created, USER, apply=True), created=count), repeats, before=clear_apps)))
        rows.append(("applications: merge, apply again (already as asked)", timed(
            lambda: expect(merge.merge(created, USER, apply=True), unchanged=count), repeats)))
        rows.append(("applications: merge --dry-run, modifies", timed(
            lambda: expect(merge.merge(modified, USER), modified=count), repeats)))
        rows.append(("applications: merge, apply, modifies", timed(
            lambda: expect(merge.merge(modified, USER, apply=True), modified=count), repeats,
            before=lambda: WebApp.objects.update(stop_timeout=10))))
        clear_apps()
        return rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(count: int, repeats: int, apps: int) -> str:
    call_command("migrate", verbosity=0, interactive=False)
    created, modified = create_file(count), modify_file(count)
    rows: list[tuple[str, tuple[float, float]]] = []
    rows.append(("parse alone (no database)", timed(lambda: parse(created, registry.schema()), repeats)))
    baseline = timed(lambda: through_the_service(count), repeats, before=clear)
    rows.append(("baseline: create through GatewayForm + services, one transaction", baseline))
    rows.append(("merge --dry-run, creates", timed(
        lambda: expect(merge.merge(created, USER), created=count), repeats, before=clear)))
    rows.append(("merge, apply, creates", timed(
        lambda: expect(merge.merge(created, USER, apply=True), created=count), repeats, before=clear)))
    rows.append(("merge, apply again (already as asked)", timed(
        lambda: expect(merge.merge(created, USER, apply=True), unchanged=count), repeats)))
    rows.append(("merge --dry-run, modifies", timed(
        lambda: expect(merge.merge(modified, USER), modified=count), repeats)))

    def modify_then_undo() -> None:
        expect(merge.merge(modified, USER, apply=True), modified=count)

    rows.append(("merge, apply, modifies", timed(
        modify_then_undo, repeats, before=lambda: Gateway.objects.update(stop_timeout=5))))
    rows.append(("export", timed(lambda: merge.export(), repeats)))
    clear()
    if apps:
        rows += applications(apps, repeats)
    lines = [
        f"{count} gateways{f' and {apps} web applications' if apps else ''}, median of {repeats} runs; "
        "baseline = creating the gateways through the service.",
        "",
        f"Load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
        f" on {os.cpu_count()} cores.",
        "",
        "| step | wall ms | CPU ms | CPU ms per definition | CPU × baseline | wall × baseline |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, (wall, cpu) in rows:
        n = apps if label.startswith("applications") else count
        lines.append(f"| {label} | {wall:.0f} | {cpu:.0f} | {cpu / n:.2f} | {cpu / baseline[1]:.2f} "
                     f"| {wall / baseline[0]:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="definitions in the file (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each step; the median is shown")
    parser.add_argument("--apps", type=int, help="web applications in their file (default: --count; 0: none)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    try:
        text = run(args.count, args.repeats, args.count if args.apps is None else args.apps)
    finally:
        shutil.rmtree(VAR, ignore_errors=True)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
