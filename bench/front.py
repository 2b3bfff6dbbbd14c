"""Requests/s through each front ÷ the same app served directly, measured in one run.

    .venv/bin/python bench/front.py [--quick] [--rounds N] [--seconds S] [--markdown FILE]

One gunicorn (gthread, 1 worker, 8 threads, ``--no-control-socket``) serves a hello-world WSGI
callable (webapps/tests/front_apps.py, 13 bytes of text) on a unix socket *and* on a TCP port:
"direct" is the TCP port, each front reaches the same process through the unix socket. The fronts
are real processes as the portal runs them: ``python -m webapps.front`` (asyncio) and
``python -m webapps.front.nginx`` (nginx 1 worker, keep-alive upstream). The load generator is
wrk (``apt-get install wrk``; a keep-alive GET loop) when it is installed, else a small asyncio
client in this file. For 1 and 32 connections, rounds are interleaved (direct, asyncio, nginx,
then again) and the median of the rounds is reported, so that a burst of load on the shared
machine does not favour one column. Targets (issue 10): nginx >= 0.75x, asyncio >= 0.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webapps.tests.front_helpers import RunningFront, free_port, gunicorn  # noqa: E402

PATH = "/hello/hello"  # the app is mounted at /hello; its last segment picks the hello answer
TARGETS = {"asyncio": 0.5, "nginx": 0.75}


PIN_LOAD: set[int] | None = None  # --pin: the load generator's CPU


def _pin_load() -> None:
    if PIN_LOAD:
        os.sched_setaffinity(0, PIN_LOAD)


def pin(pid: int, cpus: set[int]) -> None:
    """Pin a process and its descendants (gunicorn's worker, nginx's workers) to ``cpus``."""
    process = psutil.Process(pid)
    for p in [process, *process.children(recursive=True)]:
        p.cpu_affinity(sorted(cpus))


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def wrk(port: int, connections: int, seconds: float) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}{PATH}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, preexec_fn=_pin_load).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


async def _client(port: int, deadline: float, counter: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    while time.monotonic() < deadline:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
        await reader.readexactly(length)
        counter[0] += 1
    writer.close()


def python_client(port: int, connections: int, seconds: float) -> float:
    async def run() -> float:
        counter = [0]
        started = time.monotonic()
        await asyncio.gather(*(_client(port, started + seconds, counter) for _ in range(connections)))
        return counter[0] / (time.monotonic() - started)

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--pin", action="store_true", help="app and fronts on CPU 0, the load generator on CPU 1")
    args = parser.parse_args()
    global PIN_LOAD
    if args.pin:
        PIN_LOAD = {1}
    rounds, seconds = (1, 2.0) if args.quick else (args.rounds, args.seconds)
    load = wrk if shutil.which("wrk") else python_client
    tmp = Path(tempfile.mkdtemp(prefix="front-bench-"))
    direct_port = free_port()
    sock = str(tmp / "hello.sock")
    results: dict[tuple[str, int], list[float]] = {}
    cpu_us: dict[tuple[str, int], list[float]] = {}
    fronts: list[RunningFront] = []
    try:
        with gunicorn(sock, f"127.0.0.1:{direct_port}", threads=8, log=tmp / "gunicorn.log") as app:
            for kind in ("asyncio", "nginx"):
                (tmp / kind).mkdir()
                front = RunningFront(kind, tmp / kind)
                fronts.append(front)  # stopped in the finally below, even if it fails to start
                front.start([{"path": "/hello", "socket": sock, "protocol": "wsgi"}])
            if args.pin:
                for pid in [app.pid, *(f.process.pid for f in fronts)]:
                    pin(pid, {0})
            ports = {"direct": direct_port, **{f.kind: f.port for f in fronts}}
            gunicorn_tree = [psutil.Process(app.pid), *psutil.Process(app.pid).children(recursive=True)]
            carriers = {"direct": gunicorn_tree, **{f.kind: f.processes() for f in fronts}}
            for port in ports.values():  # warm up every path once
                load(port, 4, 1)
            for _ in range(rounds):
                for connections in (1, 32):
                    for name, port in ports.items():
                        cpu = cpu_seconds(carriers[name])
                        rate = load(port, connections, seconds)
                        cpu = cpu_seconds(carriers[name]) - cpu
                        results.setdefault((name, connections), []).append(rate)
                        cpu_us.setdefault((name, connections), []).append(cpu / (rate * seconds) * 1e6)
    finally:
        for front in fronts:
            front.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        f"Load: {'wrk' if load is wrk else 'asyncio client'}, {rounds} round(s) of {seconds:g} s, median requests/s"
        + (" (app and fronts pinned to CPU 0, load to CPU 1)." if args.pin else "."),
        "",
        "| connections | direct (gunicorn, TCP) | asyncio front | × direct | nginx front | × direct |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for connections in (1, 32):
        direct = statistics.median(results[("direct", connections)])
        row = f"| {connections} | {direct:,.0f} |"
        for kind in ("asyncio", "nginx"):
            value = statistics.median(results[(kind, connections)])
            ratio = value / direct
            row += f" {value:,.0f} | {ratio:.2f}x |"
            verdicts.append(
                f"{kind} at {connections} connection(s): {ratio:.2f}x "
                f"(target {TARGETS[kind]}x: {'met' if ratio >= TARGETS[kind] else 'MISSED'})"
            )
        lines.append(row)
    lines += [
        "",
        "CPU time per request (user + system, median of the rounds): of gunicorn when served directly,"
        " of the front's own process(es) otherwise; this figure moves far less with the machine's load.",
        "",
        "| connections | gunicorn direct | asyncio front | nginx workers |",
        "|---:|---:|---:|---:|",
    ]
    for connections in (1, 32):
        cells = [f"{statistics.median(cpu_us[(n, connections)]):.0f} µs" for n in ("direct", "asyncio", "nginx")]
        lines.append(f"| {connections} | " + " | ".join(cells) + " |")
    lines += ["", *verdicts]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
