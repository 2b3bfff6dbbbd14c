"""Helpers for tests that start real gateway processes through a real worker."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings

from conftest import wait_until
from gateways import runtime
from gateways.models import Gateway
from portal import paths
from portal.process import keeper
from processes import control
from processes.models import Activity

PERSONDEMO = Path(settings.BASE_DIR) / "examples" / "persondemo" / "run.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_state(gateway: Gateway, states: set[str], timeout: float = 15.0) -> Gateway:
    def settled() -> bool:
        gateway.refresh_from_db()
        return gateway.state in states and not gateway.intent

    wait_until(settled, timeout=timeout, interval=0.02,
               message=f"{gateway.name} did not reach {states} (it is {gateway.state}: {gateway.last_error})")
    return gateway


def server_processes(port: int) -> list[psutil.Process]:
    """Gateway server processes for this port, by their command line."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if "gateways.server" in cmdline and str(port) in cmdline:
            found.append(proc)
    return found


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def activity_to(gateway: Gateway, state: str, **filters: Any) -> Activity | None:
    return Activity.objects.of(gateway).filter(to_state=state, **filters).order_by("-id").first()


def run_persondemo(port: int, passphrase: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if passphrase:
        env["GATEWAY_PASSPHRASE"] = passphrase
    return subprocess.run(
        [sys.executable, str(PERSONDEMO), "--port", str(port)], capture_output=True, text=True, timeout=30, env=env
    )


def stop_every_keeper() -> None:
    """Whatever a test started, stop it: no process may outlive its test."""
    root = paths.RUN_DIR / "gateways"
    if not root.exists():
        return
    for run_dir in root.iterdir():
        status = keeper.read_status(run_dir)
        if status and status.get("state") not in {"stopped", "exited", "fatal"}:
            keeper.request_stop(run_dir, timeout=15, trigger="test")
        if keeper.keeper_alive(run_dir):
            keeper.request_stop(run_dir, timeout=15, trigger="test")


def start_and_wait(gateway: Gateway, user: Any, timeout: float = 15.0) -> Gateway:
    control.request(gateway, "start", user)
    return wait_state(gateway, {"running", "fatal", "exited", "stopped"}, timeout)


__all__ = ["runtime"]
