"""Start/stop latency through the JSON API, and page times of the list and activity pages at scale.

    .venv/bin/python bench/start_stop.py [--quick] [--markdown FILE]

Everything runs in a private environment made for the run and removed after it:
a temporary PORTAL_VAR_DIR (SQLite database, embedded Redis on a unix socket,
keeper run directories), ``manage.py migrate`` and ``collectstatic`` (the
production static storage is kept), and a real Celery worker subprocess serving
this host's queues, as in conftest.py's ``start_worker``. Requests go through
Django's test Client in this process: the figures are server time (middleware,
view, queries, template) without an HTTP server or a network in front.

(a) Start/stop: 20 cycles (5 with --quick) of POST /api/gateways/NAME/start?wait=1
    with a Bearer token, then a ping through the gateway protocol; and
    POST .../stop?wait=1. Targets: start median <= 0.5 s, stop median <= 0.3 s.
(c) A web application's start, from the request to its first answer through the front: POST
    /api/webapps/NAME/start (not waiting) with a Bearer token, then GET /NAME/ through two asyncio
    fronts reading the routes file the worker writes, one looking at it every 0.05 s (the
    portal's default) and one every 0.25 s (as before), until each answers 200; the application
    is a WSGI hello under the portal's defaults (gunicorn, 2 workers x 2 threads). Baseline, in
    the same run and interleaved: ``gunicorn -w 2 --threads 2 hello:app`` started by hand until
    its first 200 on TCP. Median and p95 of the cycles (10; 4 with --quick).
(b) Pages: the gateway list and four activity pages, median of 20 requests
    each with their SQL query counts, first with 10 definitions and 1,000
    activity rows, then with 1,000 definitions (100 marked running, no real
    processes) and 1,000,000 rows (100,000 with --quick). Target: <= 100 ms and
    the same query count at both sizes. Baseline: GET /login/ (a page with no
    query), measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from _portal_env import ROOT, private_portal  # bench/ is the script's folder, first on sys.path

# The private environment must be in place before Django or portal.paths is imported.
VAR = private_portal("portal-bench-")

import django

django.setup()

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal import paths, redis_server
from portal.process.states import BACKOFF, EXITED, FATAL, RUNNING, STARTING, STOPPED, STOPPING

REPEATS = 20
STATES_RUNNING = RUNNING
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
TRIGGERS = ["ada", "api:ada", "otto", "cli:otto", "auto-restart", "reconcile", "keeper"]
TRANSITIONS = [(STOPPED, STARTING), (STARTING, RUNNING), (RUNNING, STOPPING), (STOPPING, STOPPED),
               (RUNNING, EXITED), (EXITED, BACKOFF), (BACKOFF, FATAL)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median_p95(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


# The environment -------------------------------------------------------------


class Environment:
    """Redis, the database and a worker, all under the temporary var/ folder."""

    def __init__(self) -> None:
        self.redis: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        self.redis = redis_server.start(paths.REDIS_DIR, password=paths.redis_password(), log_file=VAR / "redis.log")
        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        self.worker = self._start_worker()
        return self

    def _start_worker(self) -> subprocess.Popen:
        from portal.celery import app
        from portal.queues import worker_queues

        host = paths.this_host()
        celery = str(Path(sys.executable).parent / "celery")
        log = open(VAR / "worker.log", "ab")
        process = subprocess.Popen(
            [celery, "-A", "portal.celery", "worker", "--hostname", f"bench@{host}",
             "--queues", ",".join(worker_queues(host)), "--concurrency", "2", "--loglevel", "WARNING",
             "--without-mingle", "--without-gossip"],
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while f"bench@{host}" not in (app.control.inspect(destination=[f"bench@{host}"], timeout=0.5).ping() or {}):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the Celery worker did not start: see {VAR / 'worker.log'}")
        return process

    def __exit__(self, *exc: object) -> None:
        from gateways.models import Gateway

        # Whatever is still running of ours stops before the folder goes.
        for gateway in Gateway.objects.filter(state__in=[STARTING, RUNNING, BACKOFF]).exclude(pid=None):
            try:
                os.kill(gateway.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError, TypeError):
                pass
        if self.worker and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
        if self.redis:
            self.redis.terminate()
            self.redis.wait(10)
        shutil.rmtree(VAR, ignore_errors=True)


def make_user(username: str, role: str) -> Any:
    user = get_user_model().objects.create_user(username, password="bench-password-1")
    user.groups.add(Group.objects.get(name=role))
    return user


# (a) Start and stop through the API --------------------------------------------


def bench_start_stop(cycles: int) -> dict[str, Any]:
    from gateways.client import connect
    from gateways.models import Gateway
    from portal import tokens

    operator = make_user("otto", "Operator")
    _, token = tokens.create(operator, "bench")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    port = free_port()
    gateway = Gateway.objects.create(name="BenchGate", server="127.0.0.1", port=port, allow_no_passphrase=True)
    starts: list[float] = []
    stops: list[float] = []
    for i in range(cycles):
        t0 = time.perf_counter()
        response = api.post(f"/api/gateways/{gateway.name}/start?wait=1")
        if response.status_code != 200 or response.json().get("state") != STATES_RUNNING:
            raise SystemExit(f"start {i + 1} failed: {response.status_code} {response.content[:300]!r}")
        deadline = time.monotonic() + 10
        while True:
            try:
                with connect("127.0.0.1", port, timeout=2) as client:
                    if client.ping():
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"start {i + 1}: running, but the gateway did not answer a ping") from None
                time.sleep(0.005)
        starts.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        response = api.post(f"/api/gateways/{gateway.name}/stop?wait=1")
        if response.status_code != 200 or response.json().get("state") != STOPPED:
            raise SystemExit(f"stop {i + 1} failed: {response.status_code} {response.content[:300]!r}")
        stops.append(time.perf_counter() - t0)
    return {"start": median_p95(starts), "stop": median_p95(stops), "cycles": cycles}


# (c) A web application's start through the front --------------------------------------------

HELLO = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
"""


def first_200(url: str, deadline: float) -> float:
    """Ask ``url`` until it answers 200; the moment it did (time.perf_counter)."""
    import urllib.error
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter()
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.002)
    raise SystemExit(f"{url} did not answer 200 in time")


def bench_webapp_start(cycles: int) -> dict[str, Any]:
    import tempfile
    import threading

    from portal import tokens
    from processes.models import Run
    from webapps.models import WebApp

    folder = Path(tempfile.mkdtemp(prefix="portal-bench-app-"))
    folder.chmod(0o755)
    (folder / "hello.py").write_text(HELLO)
    (folder / "hello.py").chmod(0o644)
    operator = get_user_model().objects.get(username="otto")
    _, token = tokens.create(operator, "bench webapps")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    WebApp.objects.create(name="/hello", directory=str(folder), module="hello", python_executable=sys.executable)
    fronts = {}
    for label, poll in (("0.05 s", "0.05"), ("0.25 s", "0.25")):
        port = free_port()
        fronts[label] = (port, subprocess.Popen(
            [sys.executable, "-m", "webapps.front", "--listen", f"127.0.0.1:{port}", "--routes",
             str(paths.ROUTES_FILE), "--routes-poll", poll], cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True))
    times: dict[str, list[float]] = {label: [] for label in fronts}
    parts: dict[str, list[float]] = {"request to launch": [], "launch to ready": [],
                                     "ready to the front's first 200": []}
    plain: list[float] = []
    try:
        for i in range(cycles):
            t0 = time.perf_counter()
            response = api.post("/api/webapps/hello/start")
            if response.status_code not in (200, 202):
                raise SystemExit(f"start {i + 1} failed: {response.status_code} {response.content[:300]!r}")
            answered: dict[str, float] = {}

            def ask(label: str, port: int, answered: dict[str, float] = answered) -> None:
                answered[label] = first_200(f"http://127.0.0.1:{port}/hello/", time.monotonic() + 30)

            threads = [threading.Thread(target=ask, args=(label, port)) for label, (port, _) in fronts.items()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for label in fronts:
                times[label].append(answered[label] - t0)
            # Where the time went, from the Run the start made (the database's clock, as t0's).
            run = Run.objects.of(WebApp.objects.get()).first()
            if run is not None and run.ready_at is not None:
                wall = time.time() - (time.perf_counter() - t0)
                parts["request to launch"].append(run.started_at.timestamp() - wall)
                parts["launch to ready"].append((run.ready_at - run.started_at).total_seconds())
                parts["ready to the front's first 200"].append(answered["0.05 s"] - t0 - (run.ready_at.timestamp() - wall))
            response = api.post("/api/webapps/hello/stop?wait=1")
            if response.status_code != 200:
                raise SystemExit(f"stop {i + 1} failed: {response.status_code} {response.content[:300]!r}")

            port = free_port()
            t0 = time.perf_counter()
            gunicorn = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-w", "2", "--threads", "2", "-b", f"127.0.0.1:{port}",
                 "--chdir", str(folder), "hello:app"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            plain.append(first_200(f"http://127.0.0.1:{port}/", time.monotonic() + 30) - t0)
            os.killpg(gunicorn.pid, signal.SIGTERM)
            gunicorn.wait(20)
    finally:
        for _, process in fronts.values():
            process.terminate()
            process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    return {"cycles": cycles, "plain": median_p95(plain), **{label: median_p95(v) for label, v in times.items()},
            "parts": {name: statistics.median(v) for name, v in parts.items() if v}}


# (b) Pages at scale ---------------------------------------------------------------


def add_definitions(first: int, count: int, running: int) -> None:
    from gateways.models import Gateway

    Gateway.objects.bulk_create(
        Gateway(
            name=f"gw{n:04d}", server="127.0.0.1", port=20000 + n, allow_no_passphrase=True,
            state=RUNNING if n - first < running else STOPPED,
            pid=100000 + n if n - first < running else None, run_host=paths.this_host(),
            state_changed_at=T0,
        )
        for n in range(first, first + count)
    )


def add_activity(total: int, start_at: dt.datetime, batch: int = 20_000) -> None:
    """``total`` rows over every gateway, a second apart, inserted in batches with executemany."""
    from gateways.models import Gateway
    from processes.models import Activity, Run

    gateways = list(Gateway.objects.values_list("pk", "name", "port"))
    adapt = connection.ops.adapt_datetimefield_value
    rng = random.Random(total)
    columns = ["kind", "object_id", "name", "at", "from_state", "to_state", "pid", "port", "exit_code", "signal",
               "expected", "trigger", "user_id", "level", "host", "message", "run_id", "seq"]
    sql = (f'INSERT INTO "{Activity._meta.db_table}" ({", ".join(columns)}) '
           f"VALUES ({', '.join(['%s'] * len(columns))})")

    expected = {STOPPED: True, EXITED: False}

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(total):
            pk, name, port = gateways[i % len(gateways)]
            before, after = TRANSITIONS[i % len(TRANSITIONS)]
            roll = rng.random()
            level = "error" if roll < 0.03 else "warning" if roll < 0.10 else "info"
            yield ("gateway", pk, name, adapt(start_at + dt.timedelta(seconds=i)), before, after, 4000 + i % 30000, port,
                   1 if after == EXITED else None, "", expected.get(after),
                   TRIGGERS[i % len(TRIGGERS)], None, level, "alpha", f"{before} to {after}", None, None)

    iterator = rows()
    while True:
        chunk = [row for _, row in zip(range(batch), iterator, strict=False)]
        if not chunk:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, chunk)
    # One run per 50 rows, for the admin's run list.
    Run.objects.bulk_create(
        (Run(kind="gateway", object_id=pk, name=name, trigger="ada", host="alpha", pid=1, started_at=start_at,
             outcome="stopped") for pk, name, _ in (gateways[i % len(gateways)] for i in range(total // 50))),
        batch_size=5000,
    )


def timed(client: Client, url: str, repeats: int = REPEATS) -> tuple[float, int, int]:
    """Median milliseconds, query count and status of GET ``url``."""
    client.get(url)  # warm caches and templates; not measured
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - t0)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    return statistics.median(times) * 1000, len(queries), response.status_code


def page_urls() -> dict[str, str]:
    """The pages measured; the cursors are found the way a reader's links would carry them."""
    from gateways.models import Gateway
    from processes.activity_views import _cursor_of
    from processes.models import Activity

    gateway = Gateway.objects.order_by("pk")[5]
    count_hint = Activity.objects.order_by("-id").values_list("id", flat=True).first() or 0
    middle = Activity.objects.filter(pk__lte=count_hint // 2).order_by("-pk").first()
    return {
        "gateway list": "/gateways/",
        "activity, all, first page": "/activity/",
        "activity, one gateway": f"/gateways/{gateway.name}/activity/",
        "activity, filtered (level=error, trigger=ada)": "/activity/?level=error&trigger=ada",
        "activity, older page (middle of the table)": f"/activity/?before={_cursor_of(middle)}",
        "activity, htmx refresh (rows only)": "/activity/#htmx",
        "admin, activity changelist": "/admin/processes/activity/",
        "admin, run changelist": "/admin/processes/run/",
    }


def measure_pages(admin: Any) -> dict[str, tuple[float, int, int]]:
    client = Client()
    client.force_login(admin)
    htmx = Client(HTTP_HX_REQUEST="true")
    htmx.force_login(admin)
    results = {"baseline: GET /login/ (no query)": timed(Client(), "/login/")}
    for label, url in page_urls().items():
        if url.endswith("#htmx"):
            results[label] = timed(htmx, url.removesuffix("#htmx"))
        else:
            results[label] = timed(client, url)
    return results


def bench_pages(rows: int) -> tuple[dict[str, tuple[float, int, int]], dict[str, tuple[float, int, int]], float]:
    from gateways.models import Gateway
    from processes.models import Activity, Run

    Activity.objects.all().delete()
    Run.objects.all().delete()
    Gateway.objects.all().delete()
    admin = make_user("ada", "Administrator")
    add_definitions(0, 10, running=1)
    add_activity(1_000, T0)
    small = measure_pages(admin)

    Activity.objects.all().delete()
    Run.objects.all().delete()
    add_definitions(10, 990, running=99)
    t0 = time.perf_counter()
    add_activity(rows, T0)
    seconds = time.perf_counter() - t0
    large = measure_pages(admin)
    return small, large, seconds


# Report -------------------------------------------------------------------------------


def report(api: dict[str, Any] | None, small: dict[str, Any], large: dict[str, Any], rows: int,
           insert_seconds: float, webapp: dict[str, Any] | None = None) -> str:
    lines = []
    if api:
        (s_med, s_p95), (t_med, t_p95) = api["start"], api["stop"]
        lines += [
            f"### Start and stop through the API ({api['cycles']} cycles)",
            "",
            "| | median | p95 | target (median) | |",
            "|---|---:|---:|---:|---|",
            (f"| start?wait=1 until running and a ping answers | {s_med * 1000:.0f} ms | {s_p95 * 1000:.0f} ms "
             f"| 500 ms | {'met' if s_med <= 0.5 else 'MISSED'} |"),
            (f"| stop?wait=1 until stopped | {t_med * 1000:.0f} ms | {t_p95 * 1000:.0f} ms | 300 ms "
             f"| {'met' if t_med <= 0.3 else 'MISSED'} |"),
            "",
        ]
    lines += report_webapp(webapp) if webapp else []
    base_small = small["baseline: GET /login/ (no query)"][0]
    base_large = large["baseline: GET /login/ (no query)"][0]
    return "\n".join(lines + report_pages(small, large, rows, insert_seconds, base_small, base_large))


def report_webapp(webapp: dict[str, Any]) -> list[str]:
    base = webapp["plain"][0]
    lines = [
        f"### A web application's start, from the request to its first answer through the front "
        f"({webapp['cycles']} cycles)",
        "",
        "| | median | p95 | × plain gunicorn | behind plain gunicorn |",
        "|---|---:|---:|---:|---:|",
        (f"| baseline: `gunicorn -w 2 --threads 2` by hand, first 200 on TCP | {base * 1000:.0f} ms | "
         f"{webapp['plain'][1] * 1000:.0f} ms | 1.00 | — |"),
    ]
    for label in ("0.05 s", "0.25 s"):
        med, p95 = webapp[label]
        lines.append(f"| POST start, first 200 through the asyncio front, routes looked at every {label} | "
                     f"{med * 1000:.0f} ms | {p95 * 1000:.0f} ms | {med / base:.2f} | +{(med - base) * 1000:.0f} ms |")
    if webapp.get("parts"):
        lines += ["", "Where the time went (medians, 0.05 s front): " + "; ".join(
            f"{name} {value * 1000:.0f} ms" for name, value in webapp["parts"].items()) + "."]
    return [*lines, ""]


def report_pages(small: dict[str, Any], large: dict[str, Any], rows: int, insert_seconds: float,
                 base_small: float, base_large: float) -> list[str]:
    lines = [
        f"### Pages: 10 definitions and 1,000 activity rows, then 1,000 definitions and {rows:,} rows",
        "",
        f"(the {rows:,} rows were inserted in {insert_seconds:.0f} s)",
        "",
        "| page | small: ms | queries | large: ms | queries | × baseline | same queries | ≤ 100 ms |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for label, (ms_l, q_l, status_l) in large.items():
        ms_s, q_s, _ = small[label]
        ratio = ms_l / base_large if base_large else 0
        note = "" if status_l == 200 else f" (HTTP {status_l})"
        baseline = label.startswith("baseline")
        lines.append(
            f"| {label}{note} | {ms_s:.1f} | {q_s} | {ms_l:.1f} | {q_l} | {ratio:.1f} | "
            f"{'—' if baseline else 'yes' if q_s == q_l else 'NO'} | {'—' if baseline else 'yes' if ms_l <= 100 else 'NO'} |"
        )
    return [*lines, "", f"Baseline GET /login/: {base_small:.1f} ms (small), {base_large:.1f} ms (large)."]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 start/stop cycles and 100,000 activity rows")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--only-webapps", action="store_true", help="(c) alone")
    args = parser.parse_args()
    cycles, rows = (5, 100_000) if args.quick else (20, 1_000_000)
    print(f"private environment in {VAR}; Django test Client in-process; worker subprocess", flush=True)
    if args.only_webapps:
        with Environment():
            make_user("otto", "Operator")
            webapp = bench_webapp_start(4 if args.quick else 10)
        print("\n".join(report_webapp(webapp)))
        return 0
    with Environment():
        api = bench_start_stop(cycles)
        print(f"start/stop done ({cycles} cycles)", flush=True)
        webapp = bench_webapp_start(4 if args.quick else 10)
        print("web application starts done", flush=True)
        small, large, seconds = bench_pages(rows)
    text = report(api, small, large, rows, seconds, webapp)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
