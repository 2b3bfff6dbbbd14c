"""One web application on two hosts (separate installations on 127.0.0.2 and 127.0.0.3, see
portal/tests/multihost.py) behind a real nginx edge made by ``manage.py webapp nginx-config --edge``:
2,000 GET requests go through the edge while the second host's engine is killed with kill -9 and
then its worker and front are stopped; none fails. The portal shows that host down, and once its
worker and front are back it rejoins, its process group still running.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from conftest import require_nginx, wait_until
from portal.tests.multihost import Installation, free_port

REQUESTS = 2000
CLIENTS = 4
APP = '''
import os


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from pid %d" % os.getpid()]
'''


def status(host: Installation, path: str = "/hello") -> dict:
    result = host.manage("webapp", "status", path, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def groups(host: Installation) -> dict[str, dict]:
    return {g["host"]: g for g in status(host).get("hosts", [])}


def stop_worker_and_front(host: Installation) -> None:
    """What a host whose portal processes went away leaves: its worker, build worker and front
    gone (SIGTERM, then SIGKILL after the grace), its keepers and the application they keep on."""
    parts = [p for p in (host.front, host.build_worker, host.worker) if p is not None and p.poll() is None]
    for part in parts:
        os.killpg(part.pid, signal.SIGTERM)
    for part in parts:
        try:
            part.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(part.pid, signal.SIGKILL)
            part.wait()


class Load:
    """``REQUESTS`` GETs through the edge by ``CLIENTS`` threads, each on a keep-alive connection;
    ``at(n, action)`` runs ``action`` (in a thread of its own) once ``n`` requests have been sent."""

    def __init__(self, address: str, port: int) -> None:
        self.address, self.port = address, port
        self.sent = 0
        self.failures: list[str] = []
        self.served: list[tuple[float, int]] = []  # (when, the pid that answered)
        self.lock = threading.Lock()
        self.actions: dict[int, object] = {}
        self.threads: list[threading.Thread] = []

    def at(self, n: int, action) -> None:  # type: ignore[no-untyped-def]
        self.actions[n] = action

    def _next(self) -> int | None:
        with self.lock:
            if self.sent >= REQUESTS:
                return None
            self.sent += 1
            action = self.actions.pop(self.sent, None)
        if action is not None:
            thread = threading.Thread(target=action, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self.sent

    def _client(self) -> None:
        conn = http.client.HTTPConnection(self.address, self.port, timeout=30)
        while (n := self._next()) is not None:
            try:
                conn.request("GET", "/hello/")
                response = conn.getresponse()
                body = response.read()
                if response.status != 200 or not body.startswith(b"hello from pid"):
                    with self.lock:
                        self.failures.append(f"request {n}: {response.status} {body[:120]!r}")
                else:
                    self.served.append((time.monotonic(), int(body.rsplit(b" ", 1)[1])))
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append(f"request {n}: {e!r}")
                conn.close()
                conn = http.client.HTTPConnection(self.address, self.port, timeout=30)
            time.sleep(0.01)  # about 400 requests a second in all: the load lasts while the host dies
        conn.close()

    def run(self) -> float:
        began = time.monotonic()
        clients = [threading.Thread(target=self._client) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(300)
        for thread in self.threads:
            thread.join(120)
        return time.monotonic() - began


def kill_engine(pid: int) -> None:
    """kill -9 the engine's master and its workers at once."""
    master = psutil.Process(pid)
    for process in [master, *master.children(recursive=True)]:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def test_two_hosts_behind_the_edge_lose_no_get_while_one_dies_and_rejoin(two_hosts, tmp_path):
    nginx = require_nginx()
    first, second = two_hosts
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "hello.py").write_text(APP)
    for path in (folder, *folder.parents):
        if path == Path("/"):
            break
        path.chmod(path.stat().st_mode | 0o005 if path == folder else path.stat().st_mode | 0o001)
    (folder / "hello.py").chmod(0o644)
    created = first.manage("webapp", "create", "/hello", "--directory", str(folder), "--module", "hello",
                           "--python", sys.executable, "--workers", "2", "--hosts", f"{first.name},{second.name}")
    assert created.returncode == 0, created.stderr + created.stdout
    started = first.manage("webapp", "start", "/hello", "--wait", "--timeout", "90")
    assert started.returncode == 0, started.stderr + started.stdout
    running = groups(first)
    assert {h: g["state"] for h, g in running.items()} == {first.name: "running", second.name: "running"}

    # The edge, as an operator makes it on host 1.
    edge_dir = tmp_path / "edge"
    (edge_dir / "tmp").mkdir(parents=True)
    port = free_port("127.0.0.1")
    config = first.manage("webapp", "nginx-config", "--edge", "--listen", f"127.0.0.1:{port}",
                          "--complete", str(edge_dir))
    assert config.returncode == 0, config.stderr
    assert f"server {first.address}:{first.front_port}" in config.stdout
    assert f"server {second.address}:{second.front_port}" in config.stdout
    (edge_dir / "nginx.conf").write_text(config.stdout)
    as_root = ["-g", "daemon off; user root;"] if os.geteuid() == 0 else ["-g", "daemon off;"]
    edge = subprocess.Popen([nginx, "-p", str(edge_dir), "-c", str(edge_dir / "nginx.conf"), *as_root],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def answers() -> bool:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/hello/")
                return conn.getresponse().status == 200
            except OSError:
                return False

        wait_until(answers, timeout=20, message="the edge did not answer")
        load = Load("127.0.0.1", port)
        engine = running[second.name]["pid"]
        on_first = {running[first.name]["pid"], *(c.pid for c in psutil.Process(running[first.name]["pid"])
                                                 .children(recursive=True))}
        at: dict[str, float] = {}

        def engine_dies() -> None:
            at["kill"] = time.monotonic()
            kill_engine(engine)

        def host_goes() -> None:
            at["down"] = time.monotonic()
            stop_worker_and_front(second)
            at["gone"] = time.monotonic()

        load.at(500, engine_dies)
        load.at(1100, host_goes)
        seconds = load.run()
        print(f"{REQUESTS} requests through the edge in {seconds:.1f} s, {len(load.failures)} failed")
        assert load.failures == [], load.failures[:10]
        # Both hosts served until the kill; after host 2's front was gone, host 1 alone.
        before = [pid for t, pid in load.served if t < at["kill"]]
        after = [pid for t, pid in load.served if t > at["gone"]]
        assert any(pid in on_first for pid in before) and any(pid not in on_first for pid in before)
        assert len(after) > 200 and all(pid in on_first for pid in after)
        print(f"served before the kill: {len(before)} ({sum(p not in on_first for p in before)} by host 2); "
              f"after host 2 was gone: {len(after)}, all by host 1")

        # The portal says what it knows: host 2 is down, its group's state unknown, never running.
        wait_until(lambda: groups(first)[second.name]["host_down"], timeout=20,
                   message="the portal did not show host 2 as down")
        seen = groups(first)
        assert seen[second.name]["state"] == "unknown" and seen[first.name]["state"] == "running"
        print(f"host 2 shown down {time.monotonic() - at['down']:.1f} s after its worker and front were stopped")

        # Host 2 back: its worker re-adopts the group its keeper kept (restarted after the kill -9).
        second.start()
        second.wait_answering()
        def rejoined() -> bool:
            group = groups(first)[second.name]
            return not group["host_down"] and group["state"] == "running"

        wait_until(rejoined, timeout=60, message="host 2 did not rejoin with its group running")
        conn = http.client.HTTPConnection(second.address, second.front_port, timeout=5)
        conn.request("GET", "/hello/")
        assert conn.getresponse().status == 200  # its front serves it again, so the edge may
    finally:
        edge.terminate()
        edge.wait(10)
        first.manage("webapp", "stop", "/hello", "--wait", "--timeout", "60")
