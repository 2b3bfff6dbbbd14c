"""Real backends and real fronts for the front's tests and benchmark: processes on real sockets."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import wait_until
from webapps.front.routes import write_routes

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
PORTAL_COOKIES = ["portal_sessionid", "portal_csrftoken"]
# Both fronts, for a fixture's or a test's parameters: the nginx one skips, saying why, without nginx.
FRONTS = ["asyncio", pytest.param("nginx", marks=pytest.mark.needs_nginx)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    return wait_until(predicate, timeout=timeout, interval=0.05, message=f"{what} not met within {timeout} s")


def unix_answers(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(path)
            s.sendall(b"GET /probe HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.1")
    except OSError:
        return False


def tcp_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def gunicorn(sock: str, *extra_binds: str, threads: int = 8, log: Path | None = None) -> Iterator[subprocess.Popen]:
    binds = [arg for b in (f"unix:{sock}", *extra_binds) for arg in ("--bind", b)]
    cmd = [str(BIN / "gunicorn"), "--chdir", str(HERE), *binds, "--worker-class", "gthread"]
    cmd += ["--threads", str(threads), "--no-control-socket", "front_apps:wsgi_app"]
    with open(log or os.devnull, "ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: unix_answers(sock) or process.poll() is not None, what="gunicorn answering")
        assert process.poll() is None, f"gunicorn exited: see {log}"
        yield process
    finally:
        stop(process)


@contextmanager
def uvicorn(sock: str, log: Path | None = None) -> Iterator[subprocess.Popen]:
    cmd = [str(BIN / "uvicorn"), "--app-dir", str(HERE), "--uds", sock, "--no-access-log", "front_apps:asgi_app"]
    with open(log or os.devnull, "ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: unix_answers(sock) or process.poll() is not None, what="uvicorn answering")
        assert process.poll() is None, f"uvicorn exited: see {log}"
        yield process
    finally:
        stop(process)


class RunningFront:
    """A front process (asyncio or nginx) following a routes file in ``directory``."""

    def __init__(self, kind: str, directory: Path, head_timeout: int = 10, idle_timeout: int = 300,
                 trusted_proxies: str = "", portal_port: int = 0, portal_hosts: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.portal_port = portal_port
        self.portal_hosts = portal_hosts
        self.trusted_proxies = trusted_proxies
        self.dir = directory
        self.port = free_port()
        self.routes_file = directory / "routes.json"
        self.metrics_file = directory / "metrics.json"
        self.log = directory / f"{kind}.log"
        self.generation = 0
        self.head_timeout = head_timeout
        self.idle_timeout = idle_timeout
        self.process: subprocess.Popen | None = None
        self.apps: list[dict[str, Any]] = []

    def start(self, apps: list[dict[str, Any]]) -> None:
        self.apps = apps
        write_routes(self.routes_file, self._with_marker(apps), PORTAL_COOKIES, self.portal_port, self.portal_hosts)
        listen = f"127.0.0.1:{self.port}"
        if self.kind == "asyncio":
            cmd = [sys.executable, "-m", "webapps.front", "--listen", listen, "--routes", str(self.routes_file)]
            cmd += ["--metrics", str(self.metrics_file), "--head-timeout", str(self.head_timeout)]
            cmd += ["--idle-timeout", str(self.idle_timeout)]
            cmd += ["--loop", "asyncio"]  # what production runs: uvloop is not in requirements.txt
        else:
            cmd = [sys.executable, "-m", "webapps.front.nginx", "--listen", listen, "--routes", str(self.routes_file)]
            cmd += ["--dir", str(self.dir / "nginx"), "--head-timeout", str(self.head_timeout)]
            cmd += ["--idle-timeout", str(self.idle_timeout)]
            cmd += ["--metrics", str(self.metrics_file)]
        if self.trusted_proxies:
            cmd += ["--trusted-proxy", self.trusted_proxies]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        wait_for(lambda: tcp_answers(self.port) or self.process.poll() is not None, what=f"{self.kind} front up")
        assert self.process.poll() is None, self.log.read_text()
        self._wait_generation()

    def _with_marker(self, apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # A stopped app whose reason is the generation: a 503 naming it proves the front applied these routes.
        marker = {"path": "/_gen", "socket": "/nonexistent.sock", "state": "stopped", "reason": f"g{self.generation}"}
        return [*apps, marker]

    def _wait_generation(self) -> None:
        want = f"g{self.generation}"

        def applied() -> bool:
            try:
                return want in self.get("/_gen/", {"Accept": "application/json"})[2]
            except (OSError, http.client.HTTPException):
                return False  # nginx's master may still be starting its workers

        wait_for(applied, timeout=10, what="routes applied")

    def set_routes(self, apps: list[dict[str, Any]]) -> float:
        """Write new routes; returns the seconds until the front answered with them."""
        self.apps = apps
        self.generation += 1
        started = time.monotonic()
        write_routes(self.routes_file, self._with_marker(apps), PORTAL_COOKIES, self.portal_port, self.portal_hosts)
        self._wait_generation()
        return time.monotonic() - started

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, Any, str]:
        conn = self.connection()
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        status, _, body = self.get(path, headers)
        return status, json.loads(body)

    def processes(self) -> list[psutil.Process]:
        """The processes that carry the traffic: the asyncio front, or nginx's workers."""
        assert self.process is not None
        runner = psutil.Process(self.process.pid)
        if self.kind == "asyncio":
            return [runner]
        return [p for p in runner.children(recursive=True) if "worker" in " ".join(p.cmdline())]

    def wait_old_workers_gone(self, before: set[int] | None = None) -> None:
        """After a reload, nginx's old workers finish their exchanges and close their idle keep-alive
        connections: a connection one of them accepted is closed after one answer, with the old
        routes. ``before``: the workers from before the reload (``worker_pids()``), all of which
        must be gone (an old worker may not have been told to retire yet when the new routes
        already answer); else those that say they are shutting down."""
        def retiring() -> bool:
            live = 0
            for worker in self.processes():
                with contextlib.suppress(psutil.Error):
                    if worker.status() == psutil.STATUS_ZOMBIE:
                        continue
                    live += 1
                    if worker.pid in (before or ()):
                        return True
                    if "shutting down" in " ".join(worker.cmdline()):
                        return True
            # nginx runs one worker here (worker_processes 1): two alive are an old one not told to
            # retire yet beside the new one, which may still accept a connection and close it.
            return live > 1

        if self.kind == "nginx":
            wait_for(lambda: not retiring(), timeout=30, what="nginx's old workers gone")

    def worker_pids(self) -> set[int]:
        return {p.pid for p in self.processes()}

    def rss(self) -> int:
        total = 0
        for p in self.processes():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
