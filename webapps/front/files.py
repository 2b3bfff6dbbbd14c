"""Open a static file beneath its folder without following any symlink: the front's only file opens.

A hosted application owns its static folder, so it can swap a file there for a symlink at any
moment. Checking a path (``realpath``) and then opening it by name leaves a window in which the
swap makes the open follow the link to the portal's secret key or database; so the file is opened
once, by the kernel, relative to a descriptor of the folder, refusing every symlink on the way,
and everything after (its type, its size, its bytes) comes from that descriptor.

How: :func:`portal.process.nofollow.open_no_links` (``openat2`` with ``RESOLVE_BENEATH |
RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS``, or a walk of ``O_NOFOLLOW`` opens), shared with the
connections to the applications' sockets.
"""

from __future__ import annotations

import os
import stat

from portal.process.nofollow import open_no_links

# O_NONBLOCK: a FIFO put in the folder must not hold the front until a writer comes (and it is
# refused by its type anyway). No effect on a regular file.
FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


def open_beneath(root: str, rel: str) -> tuple[int, os.stat_result] | None:
    """A descriptor of the regular file ``rel`` inside the folder ``root`` and its stat, or None:
    nothing there, a symlink anywhere under ``root``, a ``..``, or not a regular file. The folder
    itself is opened as the definition names it (its path was checked when it was saved)."""
    parts = rel.split("/")
    if not rel or any(part in ("", ".", "..") for part in parts) or "\x00" in rel:
        return None
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = open_no_links(root_fd, rel, FLAGS)
    except OSError:
        return None
    finally:
        os.close(root_fd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st
