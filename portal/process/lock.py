"""One request at a time per run directory: an exclusive, waited-for file lock.

The portal's control tasks take it around "is this request still the latest?"
and the launch or stop that follows, so that a start whose request was overtaken
by a stop cannot launch a keeper after that stop has run (the last request wins).
``flock`` rather than a database lock: the run directory lives on the host where
the processes run, and the lock is released by the kernel if the holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

CONTROL_LOCK = "control.lock"


class LockTimeout(Exception):
    """The lock stayed held by someone else for the whole wait."""


@contextlib.contextmanager
def control_lock(run_dir: Path | str, timeout: float = 60.0) -> Iterator[None]:
    """Hold RUN_DIR/control.lock; wait up to ``timeout`` seconds for it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(run_dir / CONTROL_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        # flock has no timeout of its own: poll the non-blocking form.
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"{run_dir / CONTROL_LOCK} stayed held for {timeout:g} s") from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
