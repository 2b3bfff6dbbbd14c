"""The listening unix socket a keeper binds for its process and hands down by descriptor.

Why the keeper binds it (as systemd's socket activation, and NGINX Unit for its applications,
do): a socket the engine binds itself lies in a folder the application can write, and the
application could put a link in its place; the fronts, connecting by path, would then carry its
visitors to whatever socket the link names. Here the socket lies in the keeper's run directory
(the portal's own, 0700), owned by the portal's user with mode ``Spec.listen["mode"]`` (0600):
the application gets the bound descriptor, never the path, and cannot replace, remove or
connect to the file. The keeper keeps the socket open across the restarts of its process, so
connections wait in its backlog while an engine is replaced (a kill -9, a reload by restart).

``Spec.listen`` = ``{"path": ABS_PATH, "mode": 0o600}``; ``argv`` names the descriptor as
:data:`LISTEN_FD` (``--bind fd://{listen_fd}``), which the keeper replaces with its number.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
from typing import Any

from portal.process import probes

LISTEN_FD = "{listen_fd}"
DEFAULT_MODE = 0o600
BACKLOG = 1024  # the kernel caps it at net.core.somaxconn

log = logging.getLogger("portal.process.keeper")


def validate_listen(listen: dict[str, Any]) -> None:
    path = listen.get("path")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise ValueError("listen needs an absolute socket path")
    if len(path.encode()) > 107:
        raise ValueError(f"the socket path {path} is longer than the 107 bytes a unix socket allows; "
                         "use a shorter run directory")
    mode = listen.get("mode", DEFAULT_MODE)
    if not isinstance(mode, int) or not 0 <= mode <= 0o777:
        raise ValueError(f"listen mode {mode!r} is not a permission mode such as 0o600")
    unknown = set(listen) - {"path", "mode"}
    if unknown:
        raise ValueError(f"unknown listen fields: {', '.join(sorted(unknown))}")


def file_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of the socket file at ``path`` (never through a link); None if there is none."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISSOCK(info.st_mode) else None


class Listener:
    """The socket of one run directory, bound on first use and kept until :meth:`close`."""

    def __init__(self, listen: dict[str, Any]) -> None:
        validate_listen(listen)
        self.path = str(listen["path"])
        self.mode = int(listen.get("mode", DEFAULT_MODE))
        self.sock: socket.socket | None = None
        # The file bind() made. fstat() of a socket gives its inode in sockfs, not the file's:
        # the file is known by what lstat() said right after the bind, in the keeper's own folder.
        self.file: tuple[int, int] | None = None

    def fileno(self) -> int:
        assert self.sock is not None
        return self.sock.fileno()

    def ensure(self) -> str | None:
        """Bound and listening at its path; an error message saying why not.

        A socket still at its path is kept (the new process takes over its backlog). One whose
        file went (removed, or replaced: by an engine that unlinks its socket when it stops) is
        closed and bound again, so that the fronts never connect to anything but ours.
        """
        if self.sock is not None and self.file is not None and file_id(self.path) == self.file:
            return None
        self.close(unlink=False)
        if os.path.islink(self.path):  # nothing of ours: the keeper's folder is no one else's to write
            log.warning("removed a link put in place of the socket %s", self.path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        # A file left by a killed keeper is removed; one a live server holds is an error.
        busy = probes.clear_stale_socket(self.path)
        if busy:
            return busy
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            self.file = file_id(self.path)
            os.chmod(self.path, self.mode)  # the keeper's umask 077 made it 0600 already
            sock.listen(BACKLOG)
        except OSError as exc:
            sock.close()
            return f"cannot listen on {self.path}: {exc.strerror or exc}; fix the run directory"
        self.sock = sock
        log.info("listening on %s (mode %o) for the process", self.path, self.mode)
        return None

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` with :data:`LISTEN_FD` replaced by the descriptor's number."""
        fd = str(self.fileno())
        return [arg.replace(LISTEN_FD, fd) for arg in argv]

    def close(self, unlink: bool = True) -> None:
        """Close the socket; with ``unlink``, remove its file if it still is ours (or, for a keeper
        that adopted its process and never held the socket, if nobody listens on it any more)."""
        sock, self.sock = self.sock, None
        mine, self.file = self.file, None
        if sock is None:
            if unlink and not os.path.islink(self.path):
                probes.clear_stale_socket(self.path)  # a live listener is left alone
            return
        if unlink and mine is not None and file_id(self.path) == mine:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        sock.close()
