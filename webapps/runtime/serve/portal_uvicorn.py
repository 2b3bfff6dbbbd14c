"""Run uvicorn for one ASGI application on a unix socket (the keeper's, or one of mode 0660), mounted at SCRIPT_NAME.

Run by path with the application's own interpreter (never imports the portal)::

    python portal_uvicorn.py --fd N -- --app-dir DIR --workers N      (a socket bound by the keeper)
    python portal_uvicorn.py --uds PATH -- --app-dir DIR --workers N  (bound here, by hand)

The application is ``WEBAPP_TARGET`` (``module:callable``) from the environment; its mount is
``SCRIPT_NAME``. This file's folder holds this file alone: it becomes ``sys.path[0]`` and must
shadow none of the application's modules.

Why a launcher, written by hand:

* **The socket's mode** (``--uds``, by hand; the portal's keeper binds the socket itself and
  passes ``--fd``). uvicorn has no option for it: ``--uds`` binds and then chmods the socket
  to 0666 (uvicorn/config.py, ``bind_socket``), so any local user could talk to the app behind the
  front's back. Here the socket is bound first, under umask 0o117 and chmod 0660 once bound, and
  handed to uvicorn with ``--fd`` (which neither chmods nor re-binds; it works with ``--workers``).
* **root_path without doubling.** uvicorn's ``--root-path`` is prepended to every path it receives;
  behind a front that passes the full path (``/fastapi/posts``) the app would see
  ``/fastapi/fastapi/posts``. So the app is wrapped in :class:`Mount`, which sets ``root_path`` to
  the mount in each scope and leaves the path whole, as the ASGI spec wants since root_path is part
  of path. An app that sets root_path itself from SCRIPT_NAME (the FastAPI example's
  ``MountFromEnvironment``) then finds it set and leaves it.
* **No request lost when a worker retires.** On SIGHUP uvicorn's supervisor starts a new worker,
  then sends the old one SIGTERM. The old worker stops accepting and at once closes every connection
  that has no request in progress, including one it accepted a moment ago whose request is still
  on its way: the client gets a reset or a broken pipe (about 1 request in 5,000 while reloading
  under load). :func:`install_graceful_shutdown` lets such fresh connections deliver their request
  first (at most :data:`FRESH_CONNECTION_GRACE` seconds), so they are answered; uvicorn has no
  option for it.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import sys
from typing import Any

TARGET_ENV = "WEBAPP_TARGET"
SOCKET_MODE = 0o660
FRESH_CONNECTION_GRACE = 1.0  # seconds a retiring worker waits for a fresh connection's request


def install_graceful_shutdown() -> None:
    """Make uvicorn's ``Server.shutdown`` wait for connections accepted but not yet read.

    Runs at import, so in the supervisor and in each worker (multiprocessing's spawn imports this
    script again as ``__mp_main__``). A connection whose request has begun, or that finished one
    and waits for the next (keep-alive), is left to uvicorn's own shutdown as before.
    """
    from uvicorn.server import Server

    original = Server.shutdown
    if getattr(original, "waits_for_fresh_connections", False):
        return

    async def shutdown(self: Any, sockets: Any = None) -> None:
        for server in self.servers:
            server.close()  # accept no more; idempotent, uvicorn's shutdown calls it again
        for sock in sockets or []:
            sock.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FRESH_CONNECTION_GRACE
        # ``cycle`` is None until a request's headers are in (h11 and httptools alike); websocket
        # connections have no such attribute and are not waited for.
        while (not self.force_exit and loop.time() < deadline
               and any(getattr(conn, "cycle", False) is None for conn in self.server_state.connections)):
            await asyncio.sleep(0.01)
        await original(self, None)

    shutdown.waits_for_fresh_connections = True  # type: ignore[attr-defined]
    Server.shutdown = shutdown  # type: ignore[method-assign]


class Mount:
    """ASGI middleware: ``root_path`` = the mount for http and websocket scopes under it."""

    def __init__(self, app: Any, mount: str) -> None:
        self.app = app
        self.mount = mount.rstrip("/")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.mount and scope["type"] in ("http", "websocket") and not scope.get("root_path"):
            path = scope.get("path") or ""
            if path == self.mount or path.startswith(self.mount + "/"):
                scope = dict(scope, root_path=self.mount)
        await self.app(scope, receive, send)


def load_target(target: str) -> Any:
    module_name, _, attrs = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for attr in (attrs or "app").split("."):
        obj = getattr(obj, attr)
    return obj


def __getattr__(name: str) -> Any:
    """``portal_uvicorn:app`` is the application of WEBAPP_TARGET, wrapped in :class:`Mount`.

    Loaded when uvicorn asks for it (in each worker), not when this module is imported.
    """
    if name != "app":
        raise AttributeError(name)
    return Mount(load_target(os.environ[TARGET_ENV]), os.environ.get("SCRIPT_NAME", ""))


def bind(path: str) -> socket.socket:
    """A listening unix socket at ``path`` with mode 0660 from the first moment."""
    try:
        os.unlink(path)  # what a killed server left behind; the keeper owns the run dir
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)  # bind() creates the file: 0660 at once, not after a window at 0777
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, SOCKET_MODE)
    sock.listen(2048)
    sock.set_inheritable(True)  # the workers get it (multiprocessing spawn passes the fd)
    return sock


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in ("--fd", "--uds") or (argv[0] == "--fd" and not argv[1].isdigit()):
        sys.exit("usage: portal_uvicorn.py (--fd N | --uds SOCKET) [-- UVICORN OPTIONS]")
    rest = argv[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    # The portal's keeper binds the socket and hands it down (--fd); --uds binds one here.
    fd = int(argv[1]) if argv[0] == "--fd" else bind(argv[1]).fileno()
    os.set_inheritable(fd, True)  # the workers get it (multiprocessing spawn passes the fd)
    from uvicorn.main import main as uvicorn_main

    sys.argv = ["uvicorn", "--fd", str(fd), *rest, "portal_uvicorn:app"]
    uvicorn_main()


install_graceful_shutdown()

if __name__ == "__main__":
    # Run as a script, this module is __main__; uvicorn imports ``portal_uvicorn`` by name from
    # sys.path[0] (this folder), which gives the same code a second time under that name.
    main(sys.argv[1:])
