"""The idle cost of the portal: CPU, wake-ups and memory while its processes run and nothing happens.

    .venv/bin/python bench/idle.py [--quick] [--seconds S] [--rounds R] [--markdown FILE]

Everything runs in a private environment made for the run and removed after it: a temporary
PORTAL_VAR_DIR (SQLite, embedded Redis on a unix socket, run directories), the launcher's two
Celery workers (the host's worker and its build worker, each with its pool) and Celery beat
(its reconcile every few seconds is part of the idle cost). No nginx, no web server: they do
not follow the managed processes.

The managed processes are programs (any command line, supervised by the real keeper and
followed by the real watcher): ``sleep``, the cheapest real process, so that what is measured
is the portal's cost of keeping and watching them, not theirs.

Each round measures, for ``seconds`` each, the portal with 0 programs running (the baseline),
then 3, then 10 (the next round goes 10, 3, 0: the rounds interleave, so a drift of the
machine falls on every figure alike). Measured per window, from /proc:

- CPU time (user + system) of the portal's processes: each worker's main process (the watcher
  thread lives there) and its pool, beat, and every keeper; as % of one core;
- wake-ups a second (voluntary context switches) and read() calls a second (/proc/PID/io
  syscr) of the workers' main processes and of the keepers;
- each keeper's RSS and USS (memory only it holds).

Figures are medians over the rounds, the spread (min-max) beside them; ratios are against
the baseline of the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import psutil
from _portal_env import ROOT, private_portal  # bench/ is the script's folder, first on sys.path

VAR = private_portal("portal-bench-idle-")

import django

django.setup()

from django.core.management import call_command

from portal import paths, redis_server
from portal.cli import CliOperator
from portal.process import keeper
from portal.process.states import RUNNING, STOPPED

COUNTS = (0, 3, 10)


class Environment:
    """Redis, the database, the two workers and beat, all under the temporary var/ folder."""

    def __init__(self) -> None:
        self.redis: subprocess.Popen | None = None
        self.parts: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> Self:
        from portal.queues import build_queue, worker_queues

        self.redis = redis_server.start(paths.REDIS_DIR, password=paths.redis_password(), log_file=VAR / "redis.log")
        call_command("migrate", verbosity=0, interactive=False)
        host = paths.this_host()
        celery = str(Path(sys.executable).parent / "celery")
        # As the launcher starts them (portal/launcher.py), minus mingle and gossip: no other worker to meet.
        common = ["--concurrency", "2", "--loglevel", "WARNING", "--without-mingle", "--without-gossip"]
        self.parts["worker"] = self._popen([celery, "-A", "portal.celery", "worker", "--hostname", f"portal@{host}",
                                            "--queues", ",".join(worker_queues(host)), *common], "worker")
        self.parts["build worker"] = self._popen([celery, "-A", "portal.celery", "worker", "--hostname",
                                                  f"build@{host}", "--queues", build_queue(host), *common],
                                                 "build-worker")
        self.parts["beat"] = self._popen([celery, "-A", "portal.celery", "beat", "--schedule",
                                          str(VAR / "celerybeat-schedule"), "--loglevel", "WARNING"], "beat")
        self._wait_for_workers([f"portal@{host}", f"build@{host}"])
        return self

    def _popen(self, argv: list[str], name: str) -> subprocess.Popen:
        log = open(VAR / f"{name}.log", "ab")
        return subprocess.Popen(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)

    def _wait_for_workers(self, nodes: list[str]) -> None:
        from portal.celery import app

        deadline = time.monotonic() + 60
        while not set(nodes) <= set(app.control.inspect(destination=nodes, timeout=0.5).ping() or {}):
            if any(p.poll() is not None for p in self.parts.values()) or time.monotonic() > deadline:
                raise SystemExit(f"a Celery worker did not start: see the logs in {VAR}")

    def __exit__(self, *exc: object) -> None:
        root = paths.RUN_DIR / "programs"
        for run_dir in root.iterdir() if root.exists() else []:
            if keeper.keeper_alive(run_dir):
                keeper.request_stop(run_dir, timeout=15, trigger="bench")
        for process in self.parts.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.parts.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if self.redis:
            self.redis.terminate()
            self.redis.wait(10)
        shutil.rmtree(VAR, ignore_errors=True)


# The programs ----------------------------------------------------------------------------


def make_programs(count: int) -> list[Any]:
    from processes import services
    from programs.forms import ProgramForm

    made = []
    for n in range(count):
        form = ProgramForm({"name": f"idle{n:02d}", "command": "/usr/bin/sleep 100000", "restart_policy": "on-failure",
                            "stop_signal": "TERM", "init_timeout": "1", "stop_timeout": "5"})
        if not form.is_valid():
            raise SystemExit(f"the program definition was refused: {form.errors.as_text()}")
        made.append(services.save_definition(form, CliOperator(), actor="bench"))
    return made


def settle(programs: list[Any], wanted: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for program in programs:
        while True:
            program.refresh_from_db()
            if program.state == wanted and not program.intent:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{program.name} is {program.state}, not {wanted}: {program.last_error}")
            time.sleep(0.1)


def set_running(programs: list[Any], count: int) -> None:
    """Exactly the first ``count`` programs running, the others stopped."""
    from processes import control

    user = CliOperator()
    for program in programs:
        program.refresh_from_db()
    to_start = [p for p in programs[:count] if p.state != RUNNING]
    to_stop = [p for p in programs[count:] if p.state != STOPPED]
    for program in to_start:
        control.request(program, "start", user, channel="cli")
    for program in to_stop:
        control.request(program, "stop", user, channel="cli")
    settle(to_start, RUNNING)
    settle(to_stop, STOPPED)


# Measuring ------------------------------------------------------------------------------


def keepers() -> list[psutil.Process]:
    found = []
    root = paths.RUN_DIR / "programs"
    for run_dir in root.iterdir() if root.exists() else []:
        ident = keeper.read_keeper_identity(run_dir)
        if ident is not None and keeper.keeper_alive(run_dir):
            try:
                found.append(psutil.Process(ident.pid))
            except psutil.Error:
                continue
    return found


def portal_processes(env: Environment) -> dict[str, list[psutil.Process]]:
    """The portal's processes by role (the programs themselves are not the portal's cost)."""
    groups: dict[str, list[psutil.Process]] = {}
    for name, popen in env.parts.items():
        main = psutil.Process(popen.pid)
        groups[f"{name}: main process"] = [main]
        if name != "beat":
            groups[f"{name}: pool"] = main.children(recursive=True)
    groups["keepers"] = keepers()
    return groups


def wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid`` (psutil's count is the main thread's
    alone, and the watcher is a thread of its own): each is a sleep that ended, a wake-up."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            continue  # a thread that ended meanwhile
    return total


def counters(proc: psutil.Process) -> tuple[float, int, int] | None:
    """CPU seconds, wake-ups, read() calls."""
    try:
        with proc.oneshot():
            times = proc.cpu_times()
        syscr = proc.io_counters().read_count
        switches = wakeups(proc.pid)
    except (psutil.Error, OSError):
        return None
    return times.user + times.system, switches, syscr


def measure(env: Environment, seconds: float) -> dict[str, dict[str, float]]:
    """Per group: % of one core, wake-ups a second, read() calls a second, over ``seconds``."""
    groups = portal_processes(env)
    before = {p.pid: counters(p) for procs in groups.values() for p in procs}
    t0 = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - t0
    figures: dict[str, dict[str, float]] = {}
    for name, procs in groups.items():
        cpu = wakes = reads = 0.0
        for proc in procs:
            start, end = before.get(proc.pid), counters(proc)
            if start is None or end is None:
                continue  # started or ended within the window: not part of the idle state
            cpu += end[0] - start[0]
            wakes += end[1] - start[1]
            reads += end[2] - start[2]
        figures[name] = {"cpu": 100 * cpu / took, "wakes": wakes / took, "reads": reads / took,
                         "count": len(procs)}
    figures["total"] = {key: sum(g[key] for g in figures.values()) for key in ("cpu", "wakes", "reads", "count")}
    return figures


def keeper_memory() -> tuple[float, float]:
    """Median RSS and USS of the keepers, in MiB."""
    rss, uss = [], []
    for proc in keepers():
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss.append(info.rss / 2**20)
        uss.append(info.uss / 2**20)
    return (statistics.median(rss) if rss else 0.0), (statistics.median(uss) if uss else 0.0)


# Report ---------------------------------------------------------------------------------


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    median = fmt.format(statistics.median(values))
    if len(values) < 2:
        return median
    return f"{median} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def report(results: dict[int, list[dict[str, dict[str, float]]]], memory: list[tuple[float, float]],
           seconds: float, rounds: int) -> str:
    base = [r["total"]["cpu"] for r in results[0]]
    lines = [
        f"### Idle cost: {rounds} rounds of {seconds:g} s per count of running programs (`sleep`)",
        "",
        "CPU as % of one core, median (min-max) over the rounds; × baseline: against 0 programs running.",
        "",
        "| programs running | portal CPU % | × baseline | per program, % | wake-ups/s | read() calls/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    base_median = statistics.median(base)
    for count in COUNTS:
        totals = [r["total"] for r in results[count]]
        cpu = [t["cpu"] for t in totals]
        per = (f"{(statistics.median(cpu) - base_median) / count:.2f}" if count else "—")
        ratio = statistics.median(cpu) / base_median if base_median else 0.0
        wakes = spread([t["wakes"] for t in totals], "{:.0f}")
        reads = spread([t["reads"] for t in totals], "{:.0f}")
        lines.append(f"| {count} | {spread(cpu)} | {ratio:.1f} | {per} | {wakes} | {reads} |")
    top = max(COUNTS)
    lines += ["", f"Where the time goes with {top} programs running (medians):", "",
              "| process | count | CPU % | wake-ups/s | read() calls/s |", "|---|---:|---:|---:|---:|"]
    for name in results[top][0]:
        if name == "total":
            continue
        rows = [r[name] for r in results[top]]
        lines.append(f"| {name} | {rows[0]['count']:.0f} | {statistics.median([r['cpu'] for r in rows]):.2f} | "
                     f"{statistics.median([r['wakes'] for r in rows]):.1f} | "
                     f"{statistics.median([r['reads'] for r in rows]):.0f} |")
    rss = [m[0] for m in memory]
    uss = [m[1] for m in memory]
    lines += ["", f"Keeper memory (median over the keepers, {top} running): RSS {spread(rss)} MiB, "
                  f"USS {spread(uss)} MiB."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 8 s")
    parser.add_argument("--seconds", type=float, help="length of one measuring window (default 20)")
    parser.add_argument("--rounds", type=int, help="rounds over 0, 3 and 10 programs (default 3)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    rounds = args.rounds or (2 if args.quick else 3)
    print(f"private environment in {VAR}; two workers and beat as subprocesses", flush=True)
    results: dict[int, list[dict[str, dict[str, float]]]] = {n: [] for n in COUNTS}
    memory: list[tuple[float, float]] = []
    with Environment() as env:
        programs = make_programs(max(COUNTS))
        for r in range(rounds):
            for count in COUNTS if r % 2 == 0 else reversed(COUNTS):
                set_running(programs, count)
                time.sleep(3)  # the start's own work (first lines, a reconcile) is not idle
                results[count].append(measure(env, seconds))
                if count == max(COUNTS):
                    memory.append(keeper_memory())
                print(f"round {r + 1}: {count} running: {results[count][-1]['total']['cpu']:.1f} % of a core",
                      flush=True)
        set_running(programs, 0)
    text = report(results, memory, seconds, rounds)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
