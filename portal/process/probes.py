"""Readiness probes: does the server a keeper started answer yet?

A probe is a small dict (``Spec.probe``); the keeper tries it every few milliseconds
while the process starts, and the start is ready once it answers. Kinds:

* ``{"kind": "tcp", "host": h, "port": p}`` - a TCP connect;
* ``{"kind": "http", "url": u}`` - a GET over TCP answering with a status below 500;
* ``{"kind": "unix", "socket": s}`` - a connect to the unix socket ``s`` (any program that
  listens there, whatever it speaks);
* ``{"kind": "unix-http", "socket": s, "path": "/"}`` - a GET over the unix socket
  ``s`` (a web application's server bound to it) answering with a status below 500;
* ``{"kind": "import", "path": "package.module:function", ...}`` - ``function(probe,
  timeout)`` returns True when ready; the dict carries whatever it needs (``host`` and
  ``port``, when given, are resolved and checked free before the start as for tcp).
  This is how a kind of server the core does not know (its own protocol's ping) is
  probed without the core importing it: the kind names its function in the spec.

A probe may say ``"timeout"``: seconds one attempt may take.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from portal.process import nofollow

PROBE_KINDS = ("tcp", "http", "unix", "unix-http", "import")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

log = logging.getLogger("portal.process.keeper")


def validate_probe(probe: dict[str, Any]) -> None:
    """Raise ValueError with a readable message when ``probe`` cannot be used."""
    kind = probe.get("kind")
    if kind not in PROBE_KINDS:
        raise ValueError(f"probe kind {kind!r} is not one of {', '.join(PROBE_KINDS)}")
    if kind == "tcp" and not probe.get("port"):
        raise ValueError(f"a {kind} probe needs a port")
    if kind == "http" and not probe.get("url"):
        raise ValueError("an http probe needs a url")
    if kind == "unix" and not probe.get("socket"):
        raise ValueError("a unix probe needs the socket's path")
    if kind == "unix-http":
        if not probe.get("socket"):
            raise ValueError("a unix-http probe needs the socket's path")
        if not str(probe.get("path") or "/").startswith("/"):
            raise ValueError(f"a unix-http probe's path must start with /, not {probe['path']!r}")
    if kind == "import" and not _IMPORT_PATH.match(str(probe.get("path") or "")):
        raise ValueError(f"an import probe needs a path like 'package.module:function', not {probe.get('path')!r}")
    timeout = probe.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"the probe's timeout must be a positive number of seconds, not {timeout!r}")


def probe_host(host: str | None) -> str:
    """The address to probe a server bound to ``host`` at."""
    # A server bound to the wildcard address is reached through loopback.
    if not host or host == "0.0.0.0":
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def tcp_port(probe: dict[str, Any] | None) -> int | None:
    """The TCP port the server listens on, when the probe names one (tcp, import)."""
    if not probe or probe.get("kind") not in ("tcp", "import") or not probe.get("port"):
        return None
    return int(probe["port"])


def import_path(probe: dict[str, Any] | None) -> str | None:
    """``package.module:function`` of an import probe, else None."""
    if not probe or probe.get("kind") != "import":
        return None
    return str(probe.get("path"))


@functools.cache
def load_import(path: str) -> Callable[[dict[str, Any], float], Any]:
    """The probe function ``package.module:function``; ValueError saying why it cannot be loaded."""
    module_name, _, name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error while importing it: the start fails with this message
        raise ValueError(f"the probe {path} cannot be imported ({exc.__class__.__name__}: {exc})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"the probe {path} names no function {name!r} in {module_name}")
    return fn


def tcp_probe(host: str | None, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((probe_host(host), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def http_probe(url: str, timeout: float) -> bool:
    status = http_status(url, timeout)
    return status is not None and status < 500


def http_status(url: str, timeout: float) -> int | None:
    """The HTTP status a GET of ``url`` answered, or None (no answer)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def unix_probe(socket_path: str, timeout: float) -> bool:
    """Does something accept a connection on the unix socket ``socket_path``? No link on the
    way is followed (nofollow.socket_path): a link could point the probe at another's socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with nofollow.socket_path(socket_path) as target:
            sock.connect(target)
        return True
    except OSError:
        return False
    finally:
        sock.close()


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})[ \r]")


def unix_http_probe(socket_path: str, path: str, timeout: float) -> bool:
    """A GET of ``path`` over the unix socket; True for any HTTP status below 500."""
    status = unix_http_status(socket_path, path, timeout)
    return status is not None and status < 500


def unix_http_status(socket_path: str, path: str, timeout: float) -> int | None:
    """The HTTP status a GET of ``path`` over the unix socket answered, or None (no answer)."""
    # By hand rather than with http.client: importing http.client (and ssl with it) cost the keeper
    # 80-120 ms of CPU on a busy machine, spent just after it starts the server, whose own start
    # then waits for the CPU (docs/benchmarks.md, (3)); readiness needs the status line alone.
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    head = b""
    try:
        sock.settimeout(timeout)
        with nofollow.socket_path(socket_path) as target:  # no link in the application's folder
            sock.connect(target)
        sock.sendall(b"GET " + path.encode("ascii") + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        while b"\n" not in head and len(head) < 1024:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(1024)
            if not chunk:
                break
            head += chunk
    except (OSError, UnicodeEncodeError):
        return None
    finally:
        sock.close()
    match = _STATUS_LINE.match(head)
    return int(match.group(1)) if match is not None else None


def clear_stale_socket(socket_path: str) -> str | None:
    """Before a start on a unix socket: remove the file a killed server left, or say who holds it.

    A server killed by SIGKILL cannot remove its socket file, and some servers (granian) refuse
    to start while it exists ("Address already in use"). The file is removed only when nothing
    listens on it (connect is refused); a live listener is another server: an error message.
    """
    import stat

    # The folder is the application's own: no link on the way is followed (a link could make the
    # portal remove another application's socket), and the file is removed through that folder.
    folder, name = os.path.split(socket_path)
    try:
        folder_fd = nofollow.open_no_links(nofollow.AT_FDCWD, folder, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                                           beneath=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"the socket's folder {folder} cannot be checked ({exc.strerror}); fix the run directory"
    try:
        return _clear_stale_socket(socket_path, folder_fd, name, stat)
    finally:
        os.close(folder_fd)


def _clear_stale_socket(socket_path: str, folder_fd: int, name: str, stat: Any) -> str | None:
    try:
        mode = os.lstat(name, dir_fd=folder_fd).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"the socket {socket_path} cannot be checked ({exc.strerror}); fix the run directory's permissions"
    if not stat.S_ISSOCK(mode):
        return f"{socket_path} exists and is not a socket; remove it or choose another run directory"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(0.5)
    try:
        with nofollow.socket_path(socket_path) as target:
            sock.connect(target)
    except (ConnectionRefusedError, FileNotFoundError):
        pass  # nobody listens: the leftover of a server that is gone
    except OSError:
        pass  # a timeout or another error: no server we could reach either
    else:
        return (f"another process is already listening on {socket_path}; stop it (or the application that "
                "uses this run directory) first")
    finally:
        sock.close()
    try:
        os.unlink(name, dir_fd=folder_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        return f"the stale socket {socket_path} cannot be removed ({exc.strerror})"
    log.info("removed the stale socket %s", socket_path)
    return None


_reported: set[str] = set()


def _import_probe(path: str, probe: dict[str, Any], timeout: float) -> bool:
    fn = load_import(path)
    try:
        return bool(fn(probe, timeout))
    except Exception as exc:  # a probe that fails is a server that is not ready (yet)
        if path not in _reported:  # once: the keeper probes every few milliseconds
            _reported.add(path)
            log.warning("the probe %s failed: %s: %s", path, exc.__class__.__name__, exc)
        return False


def probe_once(probe: dict[str, Any], timeout: float = 0.25) -> bool:
    """One readiness probe; True when the server answers."""
    return probe_answer(probe, timeout)[0]


def probe_answer(probe: dict[str, Any], timeout: float = 0.25) -> tuple[bool, str | None]:
    """One readiness probe: (ready?, what a server that is up but not ready answered: "it answered
    HTTP 500 to GET /flask/", else None)."""
    kind = probe.get("kind")
    if kind in ("http", "unix-http"):
        path = probe["url"] if kind == "http" else probe.get("path") or "/"
        status = http_status(probe["url"], timeout) if kind == "http" else \
            unix_http_status(probe["socket"], path, timeout)
        if status is not None and status >= 500:
            return False, f"it answered HTTP {status} to GET {path}"
        return status is not None, None
    return _probe_once(probe, timeout), None


def _probe_once(probe: dict[str, Any], timeout: float) -> bool:
    kind = probe.get("kind")
    if kind == "tcp":
        return tcp_probe(probe.get("host"), probe["port"], timeout)
    if kind == "unix":
        return unix_probe(str(probe["socket"]), timeout)
    path = import_path(probe)
    if path is not None:
        return _import_probe(path, probe, timeout)
    raise ValueError(f"unknown probe kind {kind!r}")
