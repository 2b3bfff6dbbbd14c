"""Latency and throughput of gateway calls against a raw TCP echo floor, RPyC and Pyro5.

    .venv/bin/python bench/gateway_calls.py [--quick] [--json FILE]

For each CPU placement (client and server both on CPU 0; client on CPU 0 and server on CPU 1,
set with os.sched_setaffinity) every implementation runs in its own server process:

  raw      length-prefixed TCP echo of a 40-byte message: the floor, one round trip
  gateway  this project's server and client (gateways.server / gateways.client)
  rpyc     RPyC classic mode (bench-only dependency)
  pyro5    Pyro5 with exposed wrapper classes of the same shape (bench-only dependency)

on four operations with PersonDemo: method call ``person.displayPerson()``, property set
``person.name = "George"``, property get ``person.name`` and the chain
``person.company.displayEmployer()``; median and p99 latency in microseconds with one call in
flight, and calls per second of the method call from 8 client threads, each on its own
connection. Every figure is also shown as a ratio against the raw echo in the same placement.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "persondemo"
sys.path.insert(0, str(ROOT))

RAW_SERVER = r"""
import socket, struct, sys, threading
HDR = struct.Struct("!I")
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(65536); view = memoryview(buf); have = 0
    while True:
        while have < 4 or have < 4 + HDR.unpack_from(buf)[0]:
            k = c.recv_into(view[have:])
            if not k:
                return
            have += k
        n = 4 + HDR.unpack_from(buf)[0]
        c.sendall(buf[:n])
        buf[:have - n] = buf[n:have]; have -= n
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(64)
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

RPYC_SERVER = r"""
import sys
from rpyc.core.service import ClassicService
from rpyc.utils.server import ThreadedServer
t = ThreadedServer(ClassicService, hostname="127.0.0.1", port=0,
                   protocol_config={"allow_all_attrs": True, "allow_setattr": True})
print("listening on 127.0.0.1:%d" % t.port, flush=True)
t.start()
"""

PYRO_SERVER = r"""
import Pyro5.api as api
daemon = api.Daemon(host="127.0.0.1", port=0)

@api.expose
class Company:
    def __init__(self):
        self._employer = "InterSystems"
    def displayEmployer(self):
        return "employer: " + self._employer

@api.expose
class Person:
    def __init__(self):
        self._name = "Tom"; self._age = 5
        self._company = Company(); daemon.register(self._company)
    @property
    def name(self): return self._name
    @name.setter
    def name(self, v): self._name = v
    @property
    def company(self): return self._company
    def displayPerson(self):
        return "name: " + self._name + ", age: " + str(self._age)

@api.expose
class Factory:
    def new_person(self):
        p = Person(); daemon.register(p); return p

uri = daemon.register(Factory(), "factory")
print("listening on 127.0.0.1:%d" % int(daemon.locationStr.rsplit(":", 1)[1]), flush=True)
daemon.requestLoop()
"""

OPS = ("method call", "property set", "property get", "chain")


def start_server(argv: list, cpu: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    line = proc.stdout.readline()  # the readiness line; the process dies with a message otherwise
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"{argv[:3]} did not start: {line!r} {proc.stderr.read()}")
    return proc, int(line.rsplit(":", 1)[1])


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()


# ---------------------------------------------------------------------------- clients


class RawClient:
    """The floor: what any request/response over this TCP connection must cost."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = b"x" * 40
        self.frame = struct.pack("!I", len(body)) + body
        self.buf = bytearray(65536)
        self.view = memoryview(self.buf)

    def call(self) -> None:
        self.sock.sendall(self.frame)
        need, have = len(self.frame), 0
        while have < need:
            have += self.sock.recv_into(self.view[have:])

    def ops(self) -> dict[str, Callable]:
        return dict.fromkeys(OPS, self.call)

    def close(self) -> None:
        self.sock.close()


def raw_client(port: int) -> tuple[dict, Callable]:
    c = RawClient(port)
    return c.ops(), c.close


def gateway_client(port: int) -> tuple[dict, Callable]:
    from gateways.client import connect

    gw = connect("127.0.0.1", port, timeout=30)
    gw.add_to_class_path(str(DEMO / "PersonDemo.py"))
    p = gw.new("PersonDemo.Person")
    return _person_ops(p), gw.close


def rpyc_client(port: int) -> tuple[dict, Callable]:
    import rpyc

    conn = rpyc.classic.connect("127.0.0.1", port)
    conn.modules.sys.path.append(str(DEMO))
    p = conn.modules.PersonDemo.Person()
    return _person_ops(p), conn.close


def pyro_client(port: int) -> tuple[dict, Callable]:
    import Pyro5.api

    factory = Pyro5.api.Proxy(f"PYRO:factory@127.0.0.1:{port}")
    p = factory.new_person()
    return _person_ops(p), lambda: (p._pyroRelease(), factory._pyroRelease())


def _person_ops(p: Any) -> dict[str, Callable]:
    def method_call() -> Any:
        return p.displayPerson()

    def prop_set() -> None:
        p.name = "George"

    def prop_get() -> Any:
        return p.name

    def chain() -> Any:
        return p.company.displayEmployer()

    return dict(zip(OPS, (method_call, prop_set, prop_get, chain), strict=False))


IMPLS: dict[str, tuple[Callable[[], list], Callable[[int], tuple[dict, Callable]]]] = {
    "raw": (lambda: [sys.executable, "-c", RAW_SERVER], raw_client),
    "gateway": (lambda: [sys.executable, "-m", "gateways.server", "--host", "127.0.0.1", "--port", "0"],
                gateway_client),
    "rpyc": (lambda: [sys.executable, "-c", RPYC_SERVER], rpyc_client),
    "pyro5": (lambda: [sys.executable, "-c", PYRO_SERVER], pyro_client),
}


# ---------------------------------------------------------------------------- measuring


def latency(fn: Callable, iterations: int, budget: float) -> tuple[float, float]:
    for _ in range(min(200, iterations)):  # warm-up: caches, class info, TCP windows
        fn()
    samples = []
    pc = time.perf_counter_ns
    deadline = time.monotonic() + budget
    for i in range(iterations):
        t0 = pc()
        fn()
        samples.append(pc() - t0)
        if i % 256 == 0 and time.monotonic() > deadline:
            break
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99) - 1] / 1000


def throughput(make_client: Callable, port: int, threads: int, seconds: float) -> float:
    counts = [0] * threads
    stop = threading.Event()
    barrier = threading.Barrier(threads + 1)

    def run(i: int) -> None:
        # Each thread makes its own connection (Pyro5 proxies belong to the thread that made them).
        ops, close = make_client(port)
        fn = ops["method call"]
        barrier.wait()
        n = 0
        while not stop.is_set():
            fn()
            n += 1
        counts[i] = n
        close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    elapsed = time.perf_counter() - t0
    for w in workers:
        w.join()
    return sum(counts) / elapsed


def run_placement(server_cpu: int, impls: list, iterations: int, budget: float, tp_seconds: float) -> dict:
    results: dict = {}
    for name in impls:
        server_argv, make_client = IMPLS[name]
        proc, port = start_server(server_argv(), server_cpu)
        try:
            ops, close = make_client(port)
            row = {op: latency(fn, iterations, budget) for op, fn in ops.items()}
            close()
            row["threads"] = throughput(make_client, port, 8, tp_seconds)
            results[name] = row
        finally:
            stop_server(proc)
        print(f"  measured {name} (server on CPU {server_cpu})", file=sys.stderr, flush=True)
    return results


def render(title: str, res: dict) -> str:
    floor = res["raw"]
    lines = [f"### {title}", "",
             "| implementation | " + " | ".join(f"{op} median / p99 us" for op in OPS) + " | 8 threads calls/s |",
             "|---|" + "---|" * (len(OPS) + 1)]
    for name, row in res.items():
        cells = []
        for op in OPS:
            med, p99 = row[op]
            cells.append(f"{med:.1f} / {p99:.1f} ({med / floor[op][0]:.2f}x)")
        tp = row["threads"]
        cells.append(f"{tp:,.0f} ({tp / floor['threads']:.2f}x)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (about 30 s)")
    ap.add_argument("--json", help="also write the raw figures to this file")
    ap.add_argument("--only", nargs="*", choices=list(IMPLS), help="implementations to run (raw always runs)")
    args = ap.parse_args(argv)
    iterations, budget, tp_seconds = (3000, 0.4, 0.5) if args.quick else (20000, 1.5, 1.5)
    impls = ["raw"] + [n for n in (args.only or list(IMPLS)) if n != "raw"]
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        print("needs Linux with at least 2 CPUs for the two placements", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {0})  # the client side (all its threads) always on CPU 0
    out = {}
    for title, server_cpu in (("client and server both on CPU 0", 0), ("client on CPU 0, server on CPU 1", 1)):
        out[title] = run_placement(server_cpu, impls, iterations, budget, tp_seconds)
        print(render(title, out[title]) + "\n", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
