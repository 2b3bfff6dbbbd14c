"""Run granian on a listening unix socket the portal's keeper bound and handed down.

Run by path with the application's own interpreter (never imports the portal)::

    python portal_granian_launch.py --fd N -- --uds PATH [GRANIAN OPTIONS] TARGET

granian has no option to serve a socket it did not bind (``--uds`` binds, and unlinks the file
when it stops), but its shared socket is a ``SocketHolder`` that its own code builds from a
descriptor (``SocketHolder(fd, uds, backlog)``, as it does on Windows). So, written by hand,
this launcher makes granian's ``_init_shared_socket`` take descriptor N instead of binding
``--uds`` (which stays in the command for granian's messages and its choice of the unix
workers), and keeps its shutdown from touching that path: the socket lies in the keeper's run
directory, which the application can neither read nor write. Checked against granian 2.8.
This file's folder holds this file alone: it becomes ``sys.path[0]`` and must shadow none of
the application's modules.
"""

from __future__ import annotations

import os
import sys


def use_descriptor(fd: int) -> None:
    from granian._granian import SocketHolder
    from granian.server.common import AbstractServer

    def init_shared_socket(self: object) -> None:
        self._ssp = None  # type: ignore[attr-defined]
        self._shd = SocketHolder(fd, True, self.backlog)  # type: ignore[attr-defined]
        self._sfd = fd  # type: ignore[attr-defined]

    unlink_pidfile = AbstractServer._unlink_pidfile

    def unlink_pidfile_only(self: object) -> None:
        bound, self.bind_uds = self.bind_uds, None  # type: ignore[attr-defined]
        try:
            unlink_pidfile(self)
        finally:
            self.bind_uds = bound  # type: ignore[attr-defined]

    AbstractServer._init_shared_socket = init_shared_socket  # type: ignore[method-assign]
    AbstractServer._unlink_pidfile = unlink_pidfile_only  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] != "--fd" or not argv[1].isdigit():
        sys.exit("usage: portal_granian_launch.py --fd N -- [GRANIAN OPTIONS] TARGET")
    fd = int(argv[1])
    rest = argv[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    os.set_inheritable(fd, True)  # granian's worker processes get it
    sys.path.pop(0)  # this folder: the application's own folder comes first, as under -m granian
    use_descriptor(fd)
    from granian.cli import entrypoint

    sys.argv = ["granian", *rest]
    entrypoint()


if __name__ == "__main__":
    main(sys.argv[1:])
