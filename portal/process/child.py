"""The process a keeper keeps, and the words for how it ended."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable

from portal.process import identity
from portal.process.identity import ProcessIdentity


def signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def describe_exit(exit_code: int | None, sig: str | None) -> str:
    if sig:
        return f"killed by {sig}"
    if exit_code is None:
        return "exit status unknown"
    return f"exit code {exit_code}"


class Child:
    """The process being kept: a Popen child, or an adopted process we can only poll."""

    def __init__(self, ident: ProcessIdentity, started_at: float, popen: subprocess.Popen[bytes] | None,
                 wake: Callable[[], None]) -> None:
        self.ident = ident
        self.started_at = started_at
        self.popen = popen
        self.adopted = popen is None
        self.returncode: int | None = None
        self.exited = threading.Event()
        # An adopted process is not our child (no wait): its pidfd becomes readable when it ends,
        # so the keeper sleeps on it instead of polling. None where pidfds are missing (Linux < 5.3).
        self.pidfd: int | None = None
        if popen is None:
            try:
                self.pidfd = os.pidfd_open(ident.pid)
            except (AttributeError, OSError):
                self.pidfd = None
        # After the pidfd: a pid reused between the two is not ours, and then nothing is watched.
        self.proc = identity.process_if_ours(ident)
        if self.proc is None and self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        if popen is not None:
            # A blocking wait in a thread notices the exit at once (no polling) and
            # wakes the main loop through the wake-up pipe.
            def wait() -> None:
                self.returncode = popen.wait()
                self.exited.set()
                wake()

            threading.Thread(target=wait, name="child-wait", daemon=True).start()

    def has_exited(self) -> bool:
        if (self.popen is None and not self.exited.is_set()
                and (self.proc is None or not identity.proc_alive(self.proc))):
            self.exited.set()  # exit status unknown: we are not its parent
            if self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None
        return self.exited.is_set()

    def exit_info(self) -> tuple[int | None, str | None]:
        rc = self.returncode
        if rc is None:
            return None, None
        if rc < 0:
            return None, signal_name(rc)
        return rc, None


def group_members(pgid: int) -> Iterable[int]:
    """Pids whose process group is ``pgid`` (read from /proc; psutil has no such query)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid:
                yield int(entry.name)
        except (ProcessLookupError, PermissionError):
            continue
