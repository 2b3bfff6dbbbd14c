"""From a program definition to what the process-control core runs: its command, folder,
environment, readiness probe and log file, and the checks made before a start.

The parsing of a command line and of a probe's target is here, without Django, so that the
form (what is saved) and the start (what runs) read them with one rule.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings

from portal import paths
from portal.process import checks
from portal.process.checks import CheckFailure
from portal.process.spec import Spec

if TYPE_CHECKING:
    from portal.process.accounts import Account
    from programs.models import Program

# The PATH a program gets unless its environment sets one: the usual system folders, never the
# portal's own PATH (its virtualenv's bin/ would come first).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A unix socket's path is at most 107 bytes (sun_path of sockaddr_un).
MAX_SOCKET_PATH = 107


# Commands and probes, as written -------------------------------------------------------------


def split_command(command: str) -> list[str]:
    """The argv of a command written as shell words; ValueError saying what is wrong."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise ValueError(f"cannot be read as shell words ({str(e).lower()}): close the quote, or escape it "
                         "with a backslash") from None
    if not words:
        raise ValueError("is empty: write the program and its arguments, e.g. /usr/bin/python3 -m http.server")
    return words


def resolve_program(word: str, path: str = DEFAULT_PATH) -> str:
    """The full path of a command's first word: itself when it is a full path, else found on ``path``
    (the program's PATH); ValueError saying why not."""
    if os.path.isabs(word):
        return os.path.normpath(word)
    if "/" in word:
        raise ValueError(f"“{word}” is a relative path: give the program's full path (e.g. "
                         f"{os.path.join('/srv/app', word.lstrip('./'))}), or a name found on PATH")
    found = shutil.which(word, path=path)
    if found is None:
        raise ValueError(f"“{word}” is not found on PATH ({path}): give the program's full path, or install it")
    return found


def with_program(command: str, program: str) -> str:
    """``command`` with its first word replaced by ``program`` (the rest as written)."""
    words = split_command(command)
    return shlex.join([program, *words[1:]]) if words[0] != program else command


def parse_probe(kind: str, target: str) -> dict[str, Any] | None:
    """The keeper's probe of a definition's probe and target; ValueError saying what to write."""
    target = target.strip()
    if not kind:
        return None
    if not target:
        example = {"tcp": "127.0.0.1:8000", "http": "http://127.0.0.1:8000/", "unix": "/run/app/app.sock"}[kind]
        raise ValueError(f"a {kind} probe needs a target, e.g. {example}")
    if kind == "tcp":
        host, port = parse_host_port(target)
        return {"kind": "tcp", "host": host, "port": port}
    if kind == "http":
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"“{target}” is not an http:// URL: write e.g. http://127.0.0.1:8000/health")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"the port of “{target}” is out of range: use a port from 1 to 65535") from None
        if port == 0:
            raise ValueError(f"the port of “{target}” is out of range: use a port from 1 to 65535")
        return {"kind": "http", "url": target, "timeout": 1.0}
    if kind == "unix":
        if not os.path.isabs(target):
            raise ValueError(f"“{target}” is not a full path: write the socket's full path, e.g. /run/app/app.sock")
        if len(target.encode()) > MAX_SOCKET_PATH:
            raise ValueError(f"a unix socket's path has at most {MAX_SOCKET_PATH} bytes and this one has "
                             f"{len(target.encode())}: choose a shorter path")
        return {"kind": "unix", "socket": os.path.normpath(target)}
    raise ValueError(f"“{kind}” is not a probe: choose tcp, http or unix, or none")


def parse_host_port(target: str) -> tuple[str, int]:
    """``host:port`` ([v6]:port for IPv6); ValueError saying what to write."""
    host, sep, port_text = target.rpartition(":")
    if not sep or not host:
        raise ValueError(f"“{target}” is not host:port: write e.g. 127.0.0.1:8000")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not port_text.isascii():
        raise ValueError(f"the port of “{target}” is not a number: write e.g. 127.0.0.1:8000")
    port = int(port_text[:6])
    if not 1 <= port <= 65535 or len(port_text) > 5:
        raise ValueError(f"port {port_text} is out of range: use a port from 1 to 65535")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if not all(c.isalnum() or c in ".-" for c in host):
            raise ValueError(f"“{host}” is neither an IP address nor a host name: write e.g. 127.0.0.1:8000") \
                from None
    return host, port


# A definition's start ------------------------------------------------------------------------


def private_inside(path: str) -> bool:
    """Is ``path`` (links resolved) in the portal's private folder var/, or does it hold it? A program's
    sandbox hides var/: it could neither run nor start there, and must not be pointed at it."""
    real, private = os.path.realpath(path), os.path.realpath(paths.VAR_DIR)
    return real == private or real.startswith(private + os.sep) or private.startswith(real.rstrip(os.sep) + os.sep)


def program_path(program: Program) -> str:
    return split_command(program.command)[0]


def working_directory(program: Program, home: Path) -> str:
    return program.directory or str(home)


def environment(program: Program) -> dict[str, str]:
    """Its whole environment beside what the keeper gives every process (its user's HOME, USER and
    LOGNAME, the locale: portal.process.spec.inherited_env): a PATH of the system's folders, then its
    own variables, then its secret ones. Nothing of the portal's settings or secrets."""
    return {"PATH": DEFAULT_PATH, **(program.environment or {}), **(program.secret_environment or {})}


def preflight(program: Program, account: Account | None) -> CheckFailure | None:
    """What would make a start fail, found before the start, each with its fix (its log file aside: the
    adapter's check); the program and its folder are checked as ``account``, the user it runs as."""
    try:
        argv = split_command(program.command)
    except ValueError as e:
        return CheckFailure("command", f"the command {e}")
    failure = checks.check_executable(argv[0], account)
    if failure is not None:
        return failure
    if program.directory:
        failure = checks.check_directory(program.directory, account)
        if failure is not None:
            return failure
    for what, path in (("program", argv[0]), ("working directory", program.directory)):
        if path and private_inside(path):
            return CheckFailure("private-folder", f"the {what} {path} is in the portal's private folder "
                                f"{paths.VAR_DIR}, which a program's sandbox hides: move it elsewhere")
    try:
        parse_probe(program.probe, program.probe_target)
    except ValueError as e:
        return CheckFailure("probe", f"the probe's target is wrong: {e}")
    return None


def build_spec(program: Program, home: Path, log_file: Path) -> Spec:
    """The command as an argument list (never a shell); secret values only in the environment,
    named in ``secret_env`` so that the keeper never writes them."""
    probe = parse_probe(program.probe, program.probe_target)
    init_timeout = float(program.init_timeout)
    return Spec(
        name=program.name,
        argv=split_command(program.command),
        env=environment(program),
        secret_env=sorted(program.secret_environment or {}),
        cwd=working_directory(program, home),
        log_file=str(log_file),
        log_roots=list(settings.PORTAL_LOG_ROOTS),
        probe=probe,
        init_timeout=init_timeout,
        # Without a probe, running once up for the start timeout (supervisor's startsecs); a run
        # shorter than that is a quick failure either way.
        quick_secs=init_timeout if probe is None else min(2.0, init_timeout),
        restart_policy=program.restart_policy,
        stop_timeout=float(program.stop_timeout),
        stop_signal=program.stop_signal,
    )
