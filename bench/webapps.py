"""Web applications served by the portal against a baseline measured in the same run.

    .venv/bin/python bench/webapps.py [--quick] [--only 1,2,3,4] [--markdown FILE]

(1) A Django view (the djangoapp example's ``/posts``, 20 posts, JSON) under the portal's own
    gunicorn command (``engines.engine_argv``: gthread, 1 worker, 4 threads) on a unix socket
    *and* a TCP port: direct is the TCP port, the asyncio and nginx fronts reach the same
    process through the socket. Targets: nginx >= 0.9x, asyncio >= 0.8x of direct.
(2) The Flask example's ``/posts`` (20 posts) served the portal's way - granian (1 worker, the
    portal's command) under a keeper, behind the nginx front and behind the asyncio front -
    against a user's own plain set-up, ``gunicorn app:app`` with its defaults (1 sync worker)
    bound to TCP. Target: >= 1.0x of plain gunicorn at 1 and 32 connections.
    ``--granian-threads N`` changes granian's blocking threads (the portal's default: 4).
(3) Start -> first answer of the Flask example: ``keeper.launch`` with the Spec from
    ``engines.build_spec`` (gunicorn, then granian), timed until the first HTTP 200 over its
    socket; baseline: plain ``gunicorn app:app`` started by hand until its first 200 on TCP.
    Median of the starts, interleaved. Target: <= 1 s.
(4) The portal's pages (Django test client, as bench/start_stop.py) with 20 web application
    definitions, first with none running (the baseline), then with the 20 running for real:
    keeper + gunicorn (1 worker, 4 threads) serving the Flask example, each in its run
    directory as the portal starts it. Target: <= 100 ms.

Items 1 and 2 use wrk (``apt-get install -y wrk``; a keep-alive GET loop; without it they are
skipped, with a message), rounds interleaved
between the columns and the median of the rounds reported, as bench/front.py does. Both
examples' virtualenvs are the cached test ones (var/test-venvs/, built on first use).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _portal_env import ROOT, private_portal  # bench/ is the script's folder, first on sys.path

# Item 4's private portal environment must be in place before portal.paths is imported.
VAR = private_portal("webapps-bench-")

import django  # noqa: E402

django.setup()  # conftest.py, which the test helpers import, imports Django's models

import psutil  # noqa: E402

from portal.process import keeper  # noqa: E402
from portal.process.states import EXITED, FATAL, RUNNING  # noqa: E402
from webapps.runtime.engines import AppRun, build_spec, engine_argv, engine_env  # noqa: E402
from webapps.tests.example_servers import EXAMPLE_APPS, EXAMPLES, http_request, venv_for  # noqa: E402
from webapps.tests.front_helpers import RunningFront, free_port, stop, tcp_answers  # noqa: E402
from webapps.tests.runtime_helpers import serve_python  # noqa: E402

CONNECTIONS = (1, 32)
BASE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


# Load and measurement --------------------------------------------------------------------


def wrk(port: int, path: str, connections: int, seconds: float) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error answers on {path}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def tree(pid: int) -> list[psutil.Process]:
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def compare(columns: dict[str, tuple[int, str, list[psutil.Process]]], rounds: int,
            seconds: float) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int], float]]:
    """Median requests/s and CPU µs per request of each column, rounds interleaved between them.

    ``columns``: name -> (TCP port, path, the processes whose CPU carries that column's traffic).
    """
    rates: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    for port, path, _ in columns.values():  # warm up every path once
        wrk(port, path, 4, 1)
    for _ in range(rounds):
        for connections in CONNECTIONS:
            for name, (port, path, carriers) in columns.items():
                before = cpu_seconds(carriers)
                rate = wrk(port, path, connections, seconds)
                used = cpu_seconds(carriers) - before
                rates.setdefault((name, connections), []).append(rate)
                cpu.setdefault((name, connections), []).append(used / (rate * seconds) * 1e6)
    return ({k: statistics.median(v) for k, v in rates.items()}, {k: statistics.median(v) for k, v in cpu.items()})


def ratio_table(names: list[str], baseline: str, rates: dict, cpu: dict, targets: dict[str, float]) -> list[str]:
    head = "| connections | " + " | ".join(
        f"{n} | × {baseline}" if n != baseline else n for n in names) + " |"
    lines = [head, "|---:|" + "---:|" * (2 * len(names) - 1)]
    verdicts = []
    for connections in CONNECTIONS:
        base = rates[(baseline, connections)]
        cells = []
        for name in names:
            value = rates[(name, connections)]
            cells.append(f"{value:,.0f}")
            if name != baseline:
                ratio = value / base
                cells.append(f"{ratio:.2f}x")
                if name in targets:
                    verdicts.append(f"{name} at {connections} connection(s): {ratio:.2f}x "
                                    f"(target {targets[name]}x: {'met' if ratio >= targets[name] else 'MISSED'})")
        lines.append(f"| {connections} | " + " | ".join(cells) + " |")
    lines += ["", "CPU time per request (user + system, median of the rounds) of every process carrying it (app "
              f"and front); \"CPU ×\" is {baseline}'s ÷ the column's: the requests/s ratio a machine short of CPU "
              "would give, a figure that moves far less with the neighbours' load than requests/s:", "",
              "| connections | " + " | ".join(f"{n} | CPU ×" if n != baseline else n for n in names) + " |",
              "|---:|" + "---:|" * (2 * len(names) - 1)]
    for connections in CONNECTIONS:
        base_cpu = cpu[(baseline, connections)]
        cells = []
        for name in names:
            cells.append(f"{cpu[(name, connections)]:.0f} µs")
            if name != baseline:
                cells.append(f"{base_cpu / cpu[(name, connections)]:.2f}x")
        lines.append(f"| {connections} | " + " | ".join(cells) + " |")
    return [*lines, "", *verdicts]


def wait_answer(probe: Callable[[], bool], process: subprocess.Popen | None, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what} exited ({process.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not answer within {timeout} s")
        time.sleep(0.01)


def unix_ok(sock: Path, path: str) -> bool:
    try:
        return http_request(sock, "GET", path).status == 200
    except OSError:
        return False


def tcp_ok(port: int, path: str) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status == 200
    except OSError:
        return False


def seed(sock: Path, mount: str, count: int = 20) -> None:
    for i in range(count):
        answer = http_request(sock, "POST", f"{mount}/posts", {"title": f"Post {i}", "content": "Some text. " * 10})
        if answer.status != 201:
            raise SystemExit(f"seeding {mount}/posts failed: {answer.status} {answer.body[:300]!r}")


def start_fronts(tmp: Path, mount: str, sock: Path, fronts: list[RunningFront]) -> None:
    for kind in ("asyncio", "nginx"):
        (tmp / kind).mkdir()
        front = RunningFront(kind, tmp / kind)
        fronts.append(front)  # stopped by the caller, even if it fails to start
        front.start([{"path": mount, "socket": str(sock), "protocol": "wsgi"}])


# (1) A Django view through the fronts ----------------------------------------------------


def bench_django(rounds: int, seconds: float) -> list[str]:
    example = EXAMPLE_APPS["django"]
    tmp = Path(tempfile.mkdtemp(prefix="wb-dj-"))
    sock = tmp / "app.sock"
    port = free_port()
    app = AppRun(mount=example.mount, directory=str(example.directory), module="mysite.wsgi",
                 callable="application", socket=str(sock), python=str(venv_for(example)),
                 env={"APP_DB_PATH": str(tmp / "django.sqlite3"), "PYTHONPATH": str(ROOT)})
    argv = engine_argv(app)
    argv[-1:-1] = ["--bind", f"127.0.0.1:{port}"]  # the same process on TCP: the direct column
    fronts: list[RunningFront] = []
    with open(tmp / "gunicorn.log", "ab") as log:
        server = subprocess.Popen(argv, cwd=app.directory, env={**BASE_ENV, **engine_env(app)},
                                  stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        wait_answer(lambda: unix_ok(sock, "/django/posts"), server, "the Django example")
        seed(sock, example.mount)
        start_fronts(tmp, example.mount, sock, fronts)
        app_tree = tree(server.pid)
        columns = {"direct": (port, "/django/posts", app_tree)}
        for front in fronts:
            columns[front.kind] = (front.port, "/django/posts", front.processes() + app_tree)
        rates, cpu = compare(columns, rounds, seconds)
    finally:
        for front in fronts:
            front.stop()
        stop(server)
        shutil.rmtree(tmp, ignore_errors=True)
    names = ["direct", "nginx", "asyncio"]
    return ["### (1) Django view (`/django/posts`, 20 posts as JSON): fronts ÷ direct", "",
            *ratio_table(names, "direct", rates, cpu, {"nginx": 0.9, "asyncio": 0.8})]


# (2) Flask: the portal's way against plain gunicorn ---------------------------------------


def plain_gunicorn(python: str, port: int, db: Path, log: Path) -> subprocess.Popen:
    """``gunicorn app:app`` as a user would run it: its defaults (1 sync worker), bound to TCP."""
    with open(log, "ab") as out:
        return subprocess.Popen([python, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "app:app"],
                                cwd=EXAMPLES / "flaskapp", env={**BASE_ENV, "APP_DB_PATH": str(db)},
                                stdout=out, stderr=out, stdin=subprocess.DEVNULL)


def flask_run(python: str, run_dir: Path, engine: str, db: Path, threads: int = 4) -> AppRun:
    return AppRun(mount="/flask", directory=str(EXAMPLES / "flaskapp"), module="app", callable="app",
                  socket=str(run_dir / "app.sock"), engine=engine, python=python, threads=threads,
                  env={"APP_DB_PATH": str(db), "PYTHONPATH": str(ROOT)}, log_file=str(run_dir / "app.log"))


def launch(app: AppRun, run_dir: Path, sandboxed: bool = True) -> None:
    """As the portal starts it: in its Landlock sandbox (processes.adapters.ProcessAdapter.sandbox_policy)."""
    from portal import paths
    from portal.process.sandbox import portal_policy

    spec = build_spec(app)
    if sandboxed:
        spec.sandbox = portal_policy(var_dir=str(paths.VAR_DIR), base_dir=str(ROOT), run_dir=str(run_dir),
                                     writable=[app.directory, os.path.dirname(app.env.get("APP_DB_PATH", "/tmp/x"))])
    keeper.launch(spec, run_dir)


def keeper_pid(run_dir: Path) -> int:
    status = keeper.wait_for(run_dir, {RUNNING, FATAL, EXITED}, timeout=60)
    if status.get("state") != RUNNING:
        raise SystemExit(f"the keeper in {run_dir} did not start its app: {status.get('error')}")
    return int(status["pid"])


def bench_flask(rounds: int, seconds: float, threads: int = 4) -> list[str]:
    python = serve_python()
    tmp = Path(tempfile.mkdtemp(prefix="wb-fl-"))
    run_dir = tmp / "run"
    port = free_port()
    fronts: list[RunningFront] = []
    plain = plain_gunicorn(python, port, tmp / "plain.sqlite3", tmp / "plain.log")
    try:
        wait_answer(lambda: tcp_ok(port, "/posts"), plain, "plain gunicorn")
        app = flask_run(python, run_dir, "granian", tmp / "granian.sqlite3", threads)
        launch(app, run_dir)
        granian = keeper_pid(run_dir)
        seed(Path(app.socket), "/flask")
        # The same 20 posts for plain gunicorn, through its TCP port.
        for i in range(20):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/posts", json.dumps({"title": f"Post {i}", "content": "Some text. " * 10}),
                         {"Content-Type": "application/json"})
            assert conn.getresponse().status == 201
            conn.close()
        start_fronts(tmp, "/flask", Path(app.socket), fronts)
        columns = {"plain gunicorn": (port, "/posts", tree(plain.pid))}
        for front in fronts:
            columns[f"{front.kind} + granian"] = (front.port, "/flask/posts", front.processes() + tree(granian))
        rates, cpu = compare(columns, rounds, seconds)
    finally:
        for front in fronts:
            front.stop()
        if run_dir.exists():
            keeper.request_stop(run_dir, timeout=20)
        stop(plain)
        shutil.rmtree(tmp, ignore_errors=True)
    names = ["plain gunicorn", "nginx + granian", "asyncio + granian"]
    return ["### (2) Flask example (`/posts`, 20 posts as JSON): front + granian ÷ plain `gunicorn app:app`", "",
            f"granian: 1 worker, {threads} blocking thread(s).", "",
            *ratio_table(names, "plain gunicorn", rates, cpu, {"nginx + granian": 1.0, "asyncio + granian": 1.0}),
            ]


# (3) Start -> first answer ---------------------------------------------------------------


def first_answer_keeper(python: str, engine: str, sandboxed: bool = True) -> float:
    run_dir = Path(tempfile.mkdtemp(prefix="wb-st-"))
    app = flask_run(python, run_dir, engine, run_dir / "flask.sqlite3")
    sock = Path(app.socket)
    try:
        started = time.monotonic()
        launch(app, run_dir, sandboxed)
        wait_answer(lambda: unix_ok(sock, "/flask/"), None, f"{engine} under its keeper", timeout=30)
        return time.monotonic() - started
    finally:
        keeper.request_stop(run_dir, timeout=20)
        shutil.rmtree(run_dir, ignore_errors=True)


def first_answer_plain(python: str) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="wb-pl-"))
    port = free_port()
    try:
        started = time.monotonic()
        process = plain_gunicorn(python, port, tmp / "flask.sqlite3", tmp / "plain.log")
        try:
            wait_answer(lambda: tcp_answers(port) and tcp_ok(port, "/"), process, "plain gunicorn", timeout=30)
            return time.monotonic() - started
        finally:
            stop(process)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_start(starts: int) -> list[str]:
    python = serve_python()
    times: dict[str, list[float]] = {}
    runs = {
        "plain gunicorn app:app (baseline)": lambda: first_answer_plain(python),
        "keeper + gunicorn (the portal's default)": lambda: first_answer_keeper(python, "gunicorn"),
        "keeper + gunicorn, not sandboxed": lambda: first_answer_keeper(python, "gunicorn", sandboxed=False),
        "keeper + granian": lambda: first_answer_keeper(python, "granian"),
    }
    for _ in range(starts):
        for name, run in runs.items():
            times.setdefault(name, []).append(run())
    base = statistics.median(times["plain gunicorn app:app (baseline)"])
    lines = ["### (3) Flask example: start → first HTTP 200", "",
             f"Median of {starts} starts each, interleaved.", "",
             "| how | median | min | max | × baseline |", "|---|---:|---:|---:|---:|"]
    verdicts = []
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.2f} s | {min(values):.2f} s | {max(values):.2f} s | {median / base:.2f}x |")
        if name.startswith("keeper"):
            verdicts.append(f"{name}: {median:.2f} s (target <= 1 s: {'met' if median <= 1 else 'MISSED'})")
    return [*lines, "", *verdicts]


# (4) The portal's pages with 20 applications running ---------------------------------------


def bench_pages(count: int, repeats: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from gateways.models import Gateway
    from portal import paths, redis_server
    from portal.process.states import RUNNING, STOPPED
    from webapps import adapter
    from webapps.models import WebApp

    python = serve_python()
    redis = redis_server.start(paths.REDIS_DIR, password=paths.redis_password(), log_file=VAR / "redis.log")
    started: list[Path] = []
    try:
        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        admin = get_user_model().objects.create_user("ada", password="bench-password-1")
        admin.groups.add(Group.objects.get(name="Administrator"))
        for i in range(10):
            Gateway.objects.create(name=f"Gate{i:02d}", server="127.0.0.1", port=20000 + i, allow_no_passphrase=True)
        apps = [WebApp.objects.create(name=f"/app{i:02d}", directory=str(EXAMPLES / "flaskapp"), module="app",
                                      callable="app", python_executable=python, workers=1, threads=4,
                                      environment={"APP_DB_PATH": str(VAR / f"app{i:02d}.sqlite3")})
                for i in range(count)]
        client = Client()
        client.force_login(admin)
        urls = {"dashboard": "/", "gateway list": "/gateways/", f"web application list ({count} rows)": "/webapps/",
                "web application detail": f"/webapps{apps[0].name}/"}

        def measure() -> dict[str, tuple[float, int, int]]:
            out = {}
            for label, url in urls.items():
                client.get(url)  # warm caches and templates; not measured
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    response = client.get(url)
                    times.append(time.perf_counter() - t0)
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(url)
                out[label] = (statistics.median(times) * 1000, len(queries), response.status_code)
            return out

        idle = measure()
        load_idle = os.getloadavg()[0]
        # The same rows marked running without a process: what the rows' own rendering costs
        # (a running row has other buttons), apart from the 20 processes' load.
        WebApp.objects.update(state=RUNNING, run_host=paths.this_host())
        marked = measure()
        WebApp.objects.update(state=STOPPED, run_host="")
        t0 = time.monotonic()
        for webapp in apps:
            run_dir = adapter.run_dir(webapp)
            keeper.launch(adapter.build_spec(webapp), run_dir)
            started.append(run_dir)
        for webapp, run_dir in zip(apps, started, strict=True):
            pid = keeper_pid(run_dir)
            WebApp.objects.filter(pk=webapp.pk).update(state=RUNNING, pid=pid, pid_create_time=psutil.Process(
                pid).create_time(), run_host=paths.this_host())
        start_all = time.monotonic() - t0
        for webapp in apps:  # each answers before the pages are measured
            wait_answer(lambda w=webapp: unix_ok(adapter.socket_path(w), w.name + "/"), None,
                        f"the web application {webapp.name}", 30)
        uss = sum(p.memory_full_info().uss for run_dir in started
                  for p in tree(int((keeper.read_status(run_dir) or {})["pid"])))
        time.sleep(2)  # let the starts' CPU settle
        running = measure()
        load_running = os.getloadavg()[0]
    finally:
        for run_dir in started:
            keeper.request_stop(run_dir, timeout=20)
        if redis:
            redis.terminate()
            redis.wait(10)
    lines = [f"### (4) The portal's pages with {count} web applications: none running, then {count} running", "",
             f"{count} keepers + gunicorn (1 worker, 4 threads, the Flask example) started in {start_all:.1f} s; "
             f"their memory {uss / 2**20:.0f} MiB (USS: each engine process's own pages, summed). "
             f"Median of {repeats} requests per page through Django's test client "
             "(server time, no HTTP server in front). "
             f"1-minute load average: {load_idle:.2f} before the starts, {load_running:.2f} with them running.", "",
             "| page | none running (baseline) | queries | marked running, no process | "
             f"{count} running | queries | × baseline | target ≤ 100 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for label in urls:
        (a, qa, sa), (m, _, sm), (b, qb, sb) = idle[label], marked[label], running[label]
        if {sa, sm, sb} != {200}:
            raise SystemExit(f"{label}: status {sa} / {sm} / {sb}")
        lines.append(f"| {label} | {a:.1f} ms | {qa} | {m:.1f} ms | {b:.1f} ms | {qb} | {b / a:.2f}x | "
                     f"{'met' if b <= 100 else 'MISSED'} |")
    return lines


# Main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, 3 starts, 5 page requests")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--granian-threads", type=int, default=4,
                        help="granian's blocking threads in item 2 (the portal's default: 4)")
    parser.add_argument("--only", default="1,2,3,4", help="which items, comma-separated")
    parser.add_argument("--markdown", help="also write the tables to this file")
    args = parser.parse_args()
    rounds, seconds = (1, 2.0) if args.quick else (args.rounds, args.seconds)
    starts, repeats = (3, 5) if args.quick else (args.starts, 20)
    only = set(args.only.split(","))
    if not shutil.which("wrk") and only & {"1", "2"}:
        print("Items 1 and 2 skipped: wrk is not installed ('apt-get install -y wrk' runs them).\n")
        only -= {"1", "2"}
    load_before = os.getloadavg()
    sections = []
    try:
        if "1" in only:
            sections.append(bench_django(rounds, seconds))
            print("\n".join(sections[-1]) + "\n", flush=True)
        if "2" in only:
            sections.append(bench_flask(rounds, seconds, args.granian_threads))
            print("\n".join(sections[-1]) + "\n", flush=True)
        if "3" in only:
            sections.append(bench_start(starts))
            print("\n".join(sections[-1]) + "\n", flush=True)
        if "4" in only:
            sections.append(bench_pages(args.apps, repeats))
            print("\n".join(sections[-1]) + "\n", flush=True)
    finally:
        shutil.rmtree(VAR, ignore_errors=True)
    load_after = os.getloadavg()
    head = (f"Load: wrk, {rounds} round(s) of {seconds:g} s per column, median requests/s. Load average "
            f"(1, 5, 15 min) {', '.join(f'{x:.2f}' for x in load_before)} at the start, "
            f"{', '.join(f'{x:.2f}' for x in load_after)} at the end; {os.cpu_count()} CPUs.")
    print(head)
    if args.markdown:
        Path(args.markdown).write_text("\n\n".join([head, *("\n".join(s) for s in sections)]) + "\n")


if __name__ == "__main__":
    main()
