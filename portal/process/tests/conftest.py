"""Fixtures for the process tests: real processes, found and killed afterwards."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from portal.process.identity import proc_alive

PROGRAMS = Path(__file__).parent / "programs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something true; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        time.sleep(interval)


def processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("status") != psutil.STATUS_ZOMBIE and any(text in arg for arg in cmdline):
            found.append(proc)
    return found


@pytest.fixture
def tag(tmp_path: Path) -> str:
    """A string in the command line of every process a test starts."""
    return str(tmp_path)


@pytest.fixture(autouse=True)
def kill_leftovers(tmp_path: Path) -> Iterator[None]:
    """Every process whose command line mentions the test's tmp_path dies after it."""
    yield
    leftovers = processes_mentioning(str(tmp_path))
    for proc in leftovers:
        try:
            proc.kill()
        except psutil.Error:
            pass
    # Not psutil.wait_procs: it counts a zombie as running until init reaps it.
    wait_until(lambda: not any(proc_alive(p) for p in leftovers), 5)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def port() -> int:
    return free_port()


def server_argv(port: int, tag: str, *options: str) -> list[str]:
    return [sys.executable, str(PROGRAMS / "tcp_server.py"), str(port), "--tag", tag, *options]
