"""Reading and rotating log files: ``tail``, ``follow`` and copytruncate rotation.

Stdlib only: the keeper imports this module and its start-up time matters.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Sequence

_BLOCK = 64 * 1024
_MAX_FOLLOW_BYTES = 1024 * 1024  # one follow() call returns at most this much
_MAX_TAIL_BYTES = 1024 * 1024  # tail() never reads further back than this
_TAIL_SECONDS = 2.0  # nor for longer than this (a hung network file system)
# Never follow a link, never wait for a writer: a FIFO opened without
# O_NONBLOCK blocks the reader until someone writes into it.
_SAFE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# In the keeper's run directory: the log files its keeper created (see open_for_append).
CREATED_RECORD = "log-files.json"

FollowToken = tuple[int, int]  # (inode, offset)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class NotARegularFile(OSError):
    """The path is a link, a FIFO, a device, a socket or a folder: no log is read from or written to it."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        super().__init__(errno.EINVAL, f"{os.fspath(path)} is {what}, not a regular file")


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "a special file"


def open_regular(path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """Open ``path`` without following a final symbolic link or waiting on a FIFO.

    Returns the descriptor of a regular file (blocking again), or raises
    NotARegularFile (or FileNotFoundError and the like).
    """
    try:
        fd = os.open(path, flags | _SAFE_FLAGS, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFile(path, "a symbolic link") from None
        if exc.errno in (errno.ENXIO, errno.EISDIR, errno.ENODEV):
            # ENXIO: a FIFO without a reader opened for writing, or a socket.
            try:
                raise NotARegularFile(path, kind_of(os.lstat(path).st_mode)) from None
            except FileNotFoundError:
                raise exc from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotARegularFile(path, kind_of(st.st_mode))
    os.set_blocking(fd, True)
    return fd


def tail(path: str | os.PathLike[str], lines: int = 200) -> list[str]:
    """The last ``lines`` lines of a regular file (without newlines); [] when it is missing.

    Reads backwards in blocks so that a large log costs only what is shown, and
    never more than 1 MiB or 2 s. Raises NotARegularFile for a link, FIFO,
    device or folder.
    """
    if lines <= 0:
        return []
    try:
        fd = open_regular(path)
    except (FileNotFoundError, PermissionError):
        return []
    deadline = time.monotonic() + _TAIL_SECONDS
    with os.fdopen(fd, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        chunks: list[bytes] = []
        newlines = 0
        # One newline more than wanted, since the file usually ends with one.
        while pos > 0 and newlines <= lines and end - pos < _MAX_TAIL_BYTES and time.monotonic() < deadline:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
    text = _decode(b"".join(reversed(chunks)))
    found = text.splitlines()
    if pos > 0 and len(found) <= lines:
        found = found[1:]  # stopped by a bound before the start: the first line is cut in two
    return found[-lines:]


def follow(
    path: str | os.PathLike[str], token: FollowToken | Sequence[int] | None = None
) -> tuple[list[str], FollowToken]:
    """New complete lines since ``token``, and the token to pass next time.

    ``token`` is ``(inode, offset)``; None starts at the current end (nothing is
    returned the first time). When the file was replaced (another inode: rename
    rotation) or truncated (copytruncate rotation; size below the offset) reading
    restarts at the beginning of the current file. A trailing line without its
    newline is left for the next call, so a line is never cut in two.
    """
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return [], (0, 0)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if token is None:
            return [], (st.st_ino, st.st_size)
        inode, offset = int(token[0]), int(token[1])
        if inode != st.st_ino or st.st_size < offset:
            offset = 0
        if st.st_size == offset:
            return [], (st.st_ino, offset)
        f.seek(offset)
        data = f.read(_MAX_FOLLOW_BYTES)
    cut = data.rfind(b"\n")
    if cut < 0:
        if len(data) < _MAX_FOLLOW_BYTES:
            return [], (st.st_ino, offset)
        cut = len(data) - 1  # one enormous line: hand it out in pieces
    complete = data[: cut + 1]
    return _decode(complete).splitlines(), (st.st_ino, offset + len(complete))


def rotate_copytruncate(path: str | os.PathLike[str], max_bytes: int, backups: int) -> bool:
    """Rotate ``path`` when it reached ``max_bytes``: keep ``path.1`` .. ``path.N``.

    Copy-then-truncate instead of rename because the child process keeps its own
    file descriptor for the log and we cannot make an arbitrary program reopen it: after
    a rename it would go on writing into ``path.1`` forever. The child's descriptor is
    opened with O_APPEND, so after the truncate its next write lands at the new end
    (offset 0) and leaves no hole. The price (as with logrotate's copytruncate) is that
    a line written between the copy and the truncate can be lost.
    Returns True when it rotated.
    """
    path = os.fspath(path)
    # Through one descriptor of a regular file, never the path: a log file
    # swapped for a link to another file between two steps is not cut.
    try:
        fd = open_regular(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        if os.fstat(fd).st_size < max_bytes:
            return False
        if backups > 0:
            # Copy beside it first: a reader never sees a half-copied path.1.
            partial = f"{path}.1.partial"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                while chunk := os.read(fd, _BLOCK):
                    os.write(out, chunk)
            finally:
                os.close(out)
            # Shift the backups by linking each one to the next name and then replacing
            # it in turn: every path.N exists at every moment (no gap in which a reader
            # of path.1 finds nothing), and each ends with one link again.
            for i in range(backups - 1, 0, -1):
                older = f"{path}.{i}"
                if os.path.lexists(older):
                    moving = f"{path}.{i + 1}.partial"
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(moving)
                    os.link(older, moving, follow_symlinks=False)
                    os.replace(moving, f"{path}.{i + 1}")
            os.replace(partial, f"{path}.1")
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    return True


# Log files the portal created -----------------------------------------------------


def open_for_append(
    path: str | os.PathLike[str], roots: Sequence[str] | None = None, run_dir: str | os.PathLike[str] | None = None
) -> int:
    """Open a process's log file for appending, as the keeper does before each start.

    Refuses (NotARegularFile, or PermissionError with a message) a link, a FIFO
    or other special file, a file with other hard links and, when ``roots`` is
    given, a file whose real place is outside them. A file it creates is
    recorded in ``run_dir`` (see :func:`created_here`): the portal takes over
    only log files it created.
    """
    flags = os.O_WRONLY | os.O_APPEND
    try:
        fd = open_regular(path, flags | os.O_CREAT | os.O_EXCL)
        created = True
    except FileExistsError:
        fd = open_regular(path, flags)
        created = False
    try:
        st = os.fstat(fd)
        if st.st_nlink != 1:
            raise PermissionError(errno.EPERM, f"{os.fspath(path)} has {st.st_nlink} hard links: "
                                  "a log file must be a file of its own")
        # The real place of what was opened, after every link on the way (Linux: of the
        # descriptor itself, so a folder swapped meanwhile cannot mislead it).
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            real = os.path.realpath(path)
        if roots is not None and not any(within(real, root) for root in roots):
            if created:
                os.unlink(real)
            raise PermissionError(errno.EPERM, f"{os.fspath(path)} is in fact {real}, outside the log "
                                  f"folders ({', '.join(roots)})")
    except BaseException:
        os.close(fd)
        raise
    if created and run_dir is not None:
        _record_created(run_dir, os.fspath(path), st)
    return fd


def within(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    path, root = os.fspath(path), os.fspath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def _read_record(run_dir: str | os.PathLike[str]) -> dict[str, list[int]]:
    try:
        with open(os.path.join(run_dir, CREATED_RECORD), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record_created(run_dir: str | os.PathLike[str], path: str, st: os.stat_result) -> None:
    record = _read_record(run_dir)
    record[path] = [st.st_dev, st.st_ino]
    record = dict(list(record.items())[-20:])  # the last files this definition used
    target = os.path.join(run_dir, CREATED_RECORD)
    tmp = f"{target}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f)
    os.replace(tmp, target)


def created_here(run_dir: str | os.PathLike[str], path: str | os.PathLike[str], st: os.stat_result) -> bool:
    """Did the keeper of ``run_dir`` create the file ``path`` whose lstat is ``st``?"""
    entry = _read_record(run_dir).get(os.fspath(path))
    return bool(entry) and list(entry) == [st.st_dev, st.st_ino]
