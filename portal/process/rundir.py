"""The run directory: its files, its lock, and who keeps it.

Layout and lifecycle: see the docstring of :mod:`portal.process.keeper`. The run
directory is the only interface between a keeper and the portal; every function here
only reads or writes files in it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from portal.process import identity
from portal.process.identity import ProcessIdentity
from portal.process.spec import Spec

SPEC_FILE = "spec.json"
STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"
LOCK_FILE = "keeper.lock"
PID_FILE = "keeper.pid"
KEEPER_LOG = "keeper.log"
STOP_REQUEST_FILE = "stop_request.json"
DEFAULT_OUTPUT_LOG = "output.log"


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Readers see the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_spec(run_dir: Path | str) -> Spec:
    return Spec.from_json(Path(run_dir, SPEC_FILE).read_text(encoding="utf-8"))


def mkdir_private(path: Path) -> None:
    """mkdir -p with 0700 for each folder created, whatever the caller's umask
    (Path.mkdir gives the parents it creates the default mode)."""
    for folder in reversed([p for p in (path, *path.parents) if not p.is_dir()]):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)


def write_spec(spec: Spec, run_dir: Path | str) -> None:
    """Create RUN_DIR (0700) and write spec.json (0600)."""
    run_dir = Path(run_dir)
    mkdir_private(run_dir)
    os.chmod(run_dir, 0o700)
    write_atomic(run_dir / SPEC_FILE, spec.to_json(), 0o600)


def read_keeper_identity(run_dir: Path | str) -> ProcessIdentity | None:
    data = read_json(Path(run_dir, PID_FILE))
    if not data:
        return None
    return ProcessIdentity.from_optional(data.get("pid"), data.get("create_time"))


def keeper_alive(run_dir: Path | str) -> bool:
    """True while the keeper recorded in RUN_DIR/keeper.pid is alive (pid reuse checked)."""
    return identity.is_alive(read_keeper_identity(run_dir))


def child_identity(status: dict[str, Any] | None) -> ProcessIdentity | None:
    if not status:
        return None
    return ProcessIdentity.from_optional(status.get("pid"), status.get("create_time"))


def try_lock(run_dir: Path) -> int | None:
    """The fd holding RUN_DIR/keeper.lock, or None when another process holds it."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            return None
        raise
    return fd


def lock_unless_keeper(run_dir: Path, grace: float = 1.0) -> int | None:
    """The lock, or None while a live keeper holds it.

    A keeper that was just killed may still hold the lock for a moment while the kernel
    tears it down (its files are released after it stops running), so a lock held by a
    keeper that is no longer alive is retried for up to ``grace`` seconds.
    """
    deadline = time.monotonic() + grace
    while True:
        fd = try_lock(run_dir)
        if fd is not None or keeper_alive(run_dir) or time.monotonic() >= deadline:
            return fd
        time.sleep(0.01)


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def log_file_of(spec: Spec, run_dir: Path) -> Path:
    return Path(spec.log_file) if spec.log_file else run_dir / DEFAULT_OUTPUT_LOG

