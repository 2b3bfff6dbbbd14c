"""The edge: web applications on one host and on two, behind a real nginx edge, and a host's death.

    .venv/bin/python bench/edge.py [--seconds 5] [--rounds 3] [--clients 8]

Two portal installations on this machine (host 1 on 127.0.0.2 with the portal's pages, host 2 on
127.0.0.3; portal/tests/multihost.py: one PostgreSQL cluster, one redis-server with a password,
each host its own var/, worker, build worker and asyncio front), the Flask example's /posts served
by two definitions: /one on host 1 alone and /two on hosts 1 and 2, both behind one nginx edge
(``manage.py webapp nginx-config --edge``). The clients are processes, each a keep-alive GET loop.

(1) Requests per second and failed requests through the edge, /one (the baseline) and /two,
    rounds interleaved, median and spread. On one 2-core machine both hosts share the same cores,
    so two hosts are not expected to serve more: this measures what spreading costs, and that
    nothing fails.
(2) A host's death under load: during a round on /two, host 2's front and /two's engine there are
    killed with SIGKILL. Failed requests (goal: none), the slowest request and the p99 around the
    death, and the time from the death until the portal shows host 2 as down (its worker killed
    too; PORTAL_HOST_BEAT_SECONDS=1 here, so four missed reports take 4 s; 20 s by default).

Needs PostgreSQL's programs (initdb, pg_ctl) and nginx; skipped with a message without them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _portal_env import private_portal  # bench/ is the script's folder, first on sys.path

# This process's own settings (a private var/) before anything imports them; the hosts have theirs.
VAR = private_portal("edge-bench-")

import django  # noqa: E402

django.setup()  # the hosts' harness and the example's virtualenv come from the test helpers

PATHS = ("/one", "/two")


def client(address: str, port: int, path: str, seconds: float) -> tuple[int, int, list[float], list[str]]:
    """One keep-alive GET loop for ``seconds``: (answered 200, failed, each request's seconds, why
    the first few failed)."""
    ok = failed = 0
    why: list[str] = []
    times: list[float] = []
    conn = http.client.HTTPConnection(address, port, timeout=30)
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        try:
            conn.request("GET", f"{path}/posts")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                ok += 1
            else:
                failed += 1
                why.append(f"HTTP {response.status}")
        except (OSError, http.client.HTTPException) as e:
            failed += 1
            why.append(repr(e))
            conn.close()
            conn = http.client.HTTPConnection(address, port, timeout=30)
        times.append(time.monotonic() - now)
    conn.close()
    return ok, failed, times, why[:5]


def load(pool: ProcessPoolExecutor, port: int, path: str, seconds: float, clients: int) -> dict[str, float]:
    began = time.monotonic()
    results = list(pool.map(client, ["127.0.0.1"] * clients, [port] * clients, [path] * clients,
                            [seconds] * clients))
    took = time.monotonic() - began
    ok = sum(r[0] for r in results)
    times = sorted(t for r in results for t in r[2])
    return {"rps": ok / took, "failed": sum(r[1] for r in results), "ok": ok,
            "p99_ms": times[int(len(times) * 0.99)] * 1000 if times else 0.0,
            "max_ms": times[-1] * 1000 if times else 0.0}


def status(host, path: str) -> dict:  # type: ignore[no-untyped-def]
    result = host.manage("webapp", "status", path, "--json")
    if result.returncode:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    from portal.paths import find_nginx
    from portal.tests.multihost import NoPostgres, free_port, hosts_up, shared_services
    from webapps.tests.example_servers import EXAMPLE_APPS, EXAMPLES, venv_for

    nginx = find_nginx()
    if nginx is None:
        print("bench/edge.py skipped: nginx is not installed (apt-get install -y nginx)")
        return 0
    work = Path(tempfile.mkdtemp(prefix="portal-edge-bench-"))
    work.chmod(0o711)
    # The example's cached virtualenv (flask, gunicorn), copied where the hosts' users may run it:
    # the cache is in the portal's private var/. Its interpreter finds its packages from where it is.
    cached = venv_for(EXAMPLE_APPS["flask"]).parent.parent
    venv = Path(shutil.copytree(cached, work / "venv", symlinks=True))
    subprocess.run(["chmod", "-R", "go+rX", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    app = Path(shutil.copytree(EXAMPLES / "flaskapp", work / "flaskapp",
                               ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3")))
    # Readable, not writable, by the hosts' users: each keeps the example's SQLite file in its own home.
    subprocess.run(["chmod", "-R", "go+rX,go-w", str(app)], check=True)
    edge = None
    try:
        with shared_services() as services, hosts_up(services, 1, 2) as (first, second):
            for path, hosts in (("/one", first.name), ("/two", f"{first.name},{second.name}")):
                made = first.manage("webapp", "create", path, "--directory", str(app), "--module", "app",
                                    "--python", python, "--hosts", hosts)
                started = first.manage("webapp", "start", path, "--wait", "--timeout", "120")
                if made.returncode or started.returncode:
                    logs = [f"{log}:\n{log.read_text(errors='replace')[-3000:]}"
                            for log in (first.var / "log" / "webapps").glob("*.log")]
                    raise RuntimeError("\n".join([made.stdout + made.stderr + started.stdout + started.stderr, *logs]))
            edge_dir = work / "edge"
            (edge_dir / "tmp").mkdir(parents=True)
            port = free_port("127.0.0.1")
            config = first.manage("webapp", "nginx-config", "--edge", "--listen", f"127.0.0.1:{port}",
                                  "--complete", str(edge_dir))
            (edge_dir / "nginx.conf").write_text(config.stdout)
            daemon = ["-g", "daemon off; user root;"] if os.geteuid() == 0 else ["-g", "daemon off;"]
            edge = subprocess.Popen([nginx, "-p", str(edge_dir), "-c", str(edge_dir / "nginx.conf"), *daemon],
                                    start_new_session=True)
            time.sleep(1)
            with ProcessPoolExecutor(args.clients) as pool:
                load(pool, port, "/two", 1.0, args.clients)  # warm up both hosts
                rounds: dict[str, list[dict[str, float]]] = {p: [] for p in PATHS}
                for _ in range(args.rounds):
                    for path in PATHS:
                        rounds[path].append(load(pool, port, path, args.seconds, args.clients))
                print(f"(1) Flask /posts through the edge, {args.clients} clients, {args.rounds} rounds of "
                      f"{args.seconds:g} s")
                base = statistics.median(r["rps"] for r in rounds["/one"])
                for path, label in (("/one", "one host (baseline)"), ("/two", "two hosts")):
                    rps = [r["rps"] for r in rounds[path]]
                    print(f"    {label:22} {statistics.median(rps):8.0f} req/s (spread {min(rps):.0f}-{max(rps):.0f}), "
                          f"ratio {statistics.median(rps) / base:.2f}x, failed "
                          f"{sum(r['failed'] for r in rounds[path])}, p99 "
                          f"{statistics.median(r['p99_ms'] for r in rounds[path]):.1f} ms")

                engine = next(g["pid"] for g in status(first, "/two")["hosts"] if g["host"] == second.name)
                futures = [pool.submit(client, "127.0.0.1", port, "/two", args.seconds)
                           for _ in range(args.clients)]
                time.sleep(args.seconds / 2)
                died = time.monotonic()
                for process in (second.front, second.worker, second.build_worker):
                    if process is not None and process.poll() is None:
                        os.killpg(process.pid, signal.SIGKILL)
                os.kill(engine, signal.SIGKILL)
                results = [f.result() for f in futures]
                times = sorted(t for r in results for t in r[2])
                down = None
                while time.monotonic() - died < 60:
                    shown = next(g for g in status(first, "/two")["hosts"] if g["host"] == second.name)
                    if shown["host_down"]:
                        down = time.monotonic() - died
                        break
                    time.sleep(0.2)
                print(f"(2) host 2's front, worker and engine killed -9 in the middle of a {args.seconds:g} s round:")
                failures = [w for r in results for w in r[3]]
                print(f"    {sum(r[0] for r in results)} answered, {sum(r[1] for r in results)} failed"
                      f"{' (' + '; '.join(failures[:3]) + ')' if failures else ''}; slowest "
                      f"request {times[-1] * 1000:.0f} ms, p99 {times[int(len(times) * 0.99)] * 1000:.1f} ms")
                print(f"    the portal showed host 2 down after {down:.1f} s" if down is not None
                      else "    the portal did not show host 2 down within 60 s")
    except NoPostgres as e:
        print(f"bench/edge.py skipped: {e}")
        return 0
    finally:
        if edge is not None:
            edge.terminate()
            edge.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
