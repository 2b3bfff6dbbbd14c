"""Open a path without following any symbolic link on the way: ``openat2`` where the kernel has it.

A hosted application owns its folders, so it can put a link where the portal (root) expects its
file or socket, at any moment: a check of the path followed by an open by name leaves a window.
So the portal opens once, by the kernel, refusing every link, and uses only the descriptor after.

Linux 5.6+ does it in one call: ``openat2`` with ``RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS``
(and ``RESOLVE_BENEATH`` for a file that must lie inside a folder). Python's ``os`` module has no
``openat2`` (CPython 3.13 still lacks it) and no package in the requirements offers it, hence the
few lines of ctypes by hand. Where the kernel answers ENOSYS (older kernels, a seccomp filter),
the same guarantee comes from a walk of one ``O_NOFOLLOW`` open per path component, each relative
to the last (``dir_fd``), which can neither climb (``..`` is refused before) nor follow a link.
Django-free: the front and the keeper use it.
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
AT_FDCWD = -100
# The syscall's number: 437 on every architecture that came after the numbers were unified (5.1).
SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "arm64": 437}.get(platform.machine())


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_have_openat2 = SYS_OPENAT2 is not None


def _openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int:
    how = _OpenHow(flags, 0, resolve)
    fd = _syscall(
        ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return fd


def _walk(dir_fd: int, parts: list[str], flags: int) -> int:
    fd = dir_fd
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            if fd != dir_fd:
                os.close(fd)
            fd = nxt
        return os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=fd)
    finally:
        if fd != dir_fd:
            os.close(fd)


def open_no_links(dir_fd: int, path: str, flags: int, beneath: bool = True) -> int:
    """A descriptor of ``path`` (relative to ``dir_fd``, or absolute when not ``beneath``), opened
    with ``flags``; OSError (ELOOP for a link) when any component is a link, or ``..`` is in it."""
    global _have_openat2
    parts = path.strip("/").split("/")
    if not path or any(part in ("", ".", "..") for part in parts) or "\x00" in path:
        raise OSError(errno.EINVAL, "not a plain path", path)
    resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (RESOLVE_BENEATH if beneath else 0)
    if _have_openat2:
        try:
            return _openat2(dir_fd, path, flags, resolve)
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter's refusal
                raise
            _have_openat2 = False
    if not beneath:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return _walk(root, parts, flags)
        finally:
            os.close(root)
    return _walk(dir_fd, parts, flags)


class socket_path:
    """``with socket_path(path) as target: sock.connect(target)``: connects to the unix socket at
    ``path`` only if no component of it is a link (through /proc/self/fd/N of an O_PATH
    descriptor, which names the socket itself). An application that owns the socket's folder then
    cannot send the portal's connection to another socket by a link. OSError otherwise."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> str:
        if not os.path.isabs(self.path):
            raise OSError(errno.EINVAL, "not an absolute path", self.path)
        self.fd = open_no_links(AT_FDCWD, self.path, os.O_PATH | os.O_CLOEXEC, beneath=False)
        if not stat.S_ISSOCK(os.fstat(self.fd).st_mode):
            os.close(self.fd)
            self.fd = -1
            raise OSError(errno.ENOTSOCK, "not a socket", self.path)
        return f"/proc/self/fd/{self.fd}"

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
