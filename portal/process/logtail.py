"""Reading and rotating log files: ``tail``, ``follow`` and copytruncate rotation.

Stdlib only: the keeper imports this module and its start-up time matters.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

_BLOCK = 64 * 1024
_MAX_FOLLOW_BYTES = 1024 * 1024  # one follow() call returns at most this much

FollowToken = tuple[int, int]  # (inode, offset)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def tail(path: str | os.PathLike[str], lines: int = 200) -> list[str]:
    """The last ``lines`` lines of a file (without newlines); [] when it is missing.

    Reads backwards in blocks so that a large log costs only what is shown.
    """
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            pos = end
            chunks: list[bytes] = []
            newlines = 0
            # One newline more than wanted, since the file usually ends with one.
            while pos > 0 and newlines <= lines:
                step = min(_BLOCK, pos)
                pos -= step
                f.seek(pos)
                chunk = f.read(step)
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return []
    text = _decode(b"".join(reversed(chunks)))
    return text.splitlines()[-lines:]


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
        st = os.stat(path)
    except FileNotFoundError:
        return [], (0, 0)
    if token is None:
        return [], (st.st_ino, st.st_size)
    inode, offset = int(token[0]), int(token[1])
    if inode != st.st_ino or st.st_size < offset:
        offset = 0
    if st.st_size == offset:
        return [], (st.st_ino, offset)
    with open(path, "rb") as f:
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
    try:
        if os.stat(path).st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    if backups > 0:
        for i in range(backups - 1, 0, -1):
            older = f"{path}.{i}"
            if os.path.exists(older):
                os.replace(older, f"{path}.{i + 1}")
        # Copy beside it and rename: a reader never sees a half-copied path.1.
        partial = f"{path}.1.partial"
        shutil.copyfile(path, partial)
        os.replace(partial, f"{path}.1")
    os.truncate(path, 0)
    return True
