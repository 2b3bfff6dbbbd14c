"""Open a static file beneath its folder without following any symlink: the front's only file opens.

A hosted application owns its static folder, so it can swap a file there for a symlink at any
moment. Checking a path (``realpath``) and then opening it by name leaves a window in which the
swap makes the open follow the link to the portal's secret key or database; so the file is opened
once, by the kernel, relative to a descriptor of the folder, refusing every symlink on the way,
and everything after (its type, its size, its bytes) comes from that descriptor.

Linux 5.6+ does it in one call: ``openat2`` with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
RESOLVE_NO_MAGICLINKS``. Python's ``os`` module has no ``openat2`` (CPython 3.13 still lacks
it), and no package in the requirements offers it, hence the few lines of ctypes written by hand
below. Where the kernel answers ENOSYS (older kernels, a seccomp filter), the same guarantee
comes from a walk of one ``O_NOFOLLOW`` open per path component, each relative to the last
(``dir_fd``), which can neither climb (``..`` is refused before) nor follow a link.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat

# linux/openat2.h
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
# The syscall's number: 437 on every architecture that came after the numbers were unified (5.1).
SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "arm64": 437}.get(platform.machine())
# O_NONBLOCK: a FIFO put in the folder must not hold the front until a writer comes (and it is
# refused by its type anyway). No effect on a regular file.
FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_have_openat2 = SYS_OPENAT2 is not None


def _openat2(dir_fd: int, path: str) -> int:
    how = _OpenHow(FLAGS, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    fd = _syscall(
        ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return fd


def _walk(dir_fd: int, parts: list[str]) -> int:
    fd = dir_fd
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            if fd != dir_fd:
                os.close(fd)
            fd = nxt
        return os.open(parts[-1], FLAGS, dir_fd=fd)
    finally:
        if fd != dir_fd:
            os.close(fd)


def open_beneath(root: str, rel: str) -> tuple[int, os.stat_result] | None:
    """A descriptor of the regular file ``rel`` inside the folder ``root`` and its stat, or None:
    nothing there, a symlink anywhere under ``root``, a ``..``, or not a regular file. The folder
    itself is opened as the definition names it (its path was checked when it was saved)."""
    global _have_openat2
    parts = rel.split("/")
    if not rel or any(part in ("", ".", "..") for part in parts) or "\x00" in rel:
        return None
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = None
        if _have_openat2:
            try:
                fd = _openat2(root_fd, rel)
            except OSError as exc:
                if exc.errno not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter's refusal
                    return None
                _have_openat2 = False
        if fd is None:
            fd = _walk(root_fd, parts)
    except OSError:
        return None
    finally:
        os.close(root_fd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st
