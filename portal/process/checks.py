"""Checks to run before a start, each answering None (fine) or a CheckFailure.

Every message says what is wrong and how to fix it, so that the page can show it
as it is instead of an operator digging through a log after a failed start.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from portal.process import accounts
from portal.process.accounts import Account

MIN_PYTHON = (3, 9)
_VERSION_TIMEOUT = 5.0


@dataclass(frozen=True)
class CheckFailure:
    code: str  # stable identifier, e.g. "python-missing", "port-in-use"
    message: str
    fix: str | None = None  # what to do, in words
    fix_argv: list[str] | None = field(default=None)  # a command a button may run
    # The whole output of what failed (a build's pip), for the detail page: the message says only its cause.
    output: list[str] | None = field(default=None)

    def __str__(self) -> str:
        return self.message


def check_python(path: str, account: Account | None = None) -> CheckFailure | None:
    """The interpreter exists, runs, is a Python and is at least 3.9. ``account``: the user to run
    it as (a virtualenv's interpreter runs its .pth files: hosted code, never run as the portal)."""
    if not path:
        return CheckFailure("python-missing", "no Python executable is set; enter the path of a Python 3.9 or newer")
    if not os.path.exists(path):
        return CheckFailure("python-missing", f"{path} does not exist; enter the path of a Python 3.9 or newer "
                            "(for example the output of `which python3`)")
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        return CheckFailure("python-not-executable", f"{path} is not an executable file; "
                            f"check the path, or make it executable (chmod +x {path})",
                            fix=f"chmod +x {path}")
    try:
        proc = accounts.run(
            [path, "-c", "import sys; print(tuple(sys.version_info[:3]))"], account,
            capture_output=True, text=True, timeout=_VERSION_TIMEOUT, stdin=subprocess.DEVNULL, check=False,
        )
    except subprocess.TimeoutExpired:
        return CheckFailure("python-hangs", f"{path} did not answer within {_VERSION_TIMEOUT:g} s; "
                            "is it really a Python interpreter?")
    except PermissionError as exc:
        if account is None:
            return CheckFailure("python-not-runnable", f"{path} cannot be run: {exc.strerror or exc}")
        return CheckFailure("python-not-runnable", f"{path} cannot be run by {account.describe()}, the user it "
                            f"runs as ({exc.strerror or exc}): choose an interpreter other users may run (e.g. "
                            "/usr/bin/python3), or open its folders to them (chmod o+rx)")
    except OSError as exc:
        return CheckFailure("python-not-runnable", f"{path} cannot be run: {exc.strerror or exc}")
    version = _parse_version(proc.stdout) if proc.returncode == 0 else None
    if version is None:
        return CheckFailure("not-python", f"{path} is not a Python interpreter (asked its version with -c, it "
                            f"{_how_it_answered(proc)}): enter the path of a Python 3.9 or newer, e.g. "
                            "/usr/bin/python3 or a virtualenv's bin/python")
    if version < MIN_PYTHON:
        shown = ".".join(map(str, version))
        return CheckFailure("python-too-old", f"{path} is Python {shown}; Python 3.9 or newer is needed: "
                            "choose a newer interpreter")
    return None


def _how_it_answered(proc: subprocess.CompletedProcess[str]) -> str:
    """What a program that is not Python did when asked its version, in a few words."""
    said = (proc.stderr or proc.stdout or "").strip().splitlines()
    first = f": {said[0][:120]}" if said else ""
    if proc.returncode == 0:
        return f"printed no version{first}"
    return f"ended with exit code {proc.returncode}{first}"


def _parse_version(text: str) -> tuple[int, ...] | None:
    text = text.strip().strip("()[]")
    try:
        parts = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        return None
    return parts if len(parts) == 3 else None


def check_modules(path: str, modules: list[str] | None = None, account: Account | None = None) -> CheckFailure | None:
    """The interpreter at ``path``, run as ``account``, can import ``modules`` (default: msgpack)."""
    modules = ["msgpack"] if modules is None else modules
    if not modules:
        return None
    # The second line: whether pip may install into it. A distribution's own Python (Debian 12,
    # Ubuntu 23.04 and later) refuses with "externally-managed-environment" (PEP 668); a
    # virtualenv made from it does not.
    probe = ("import importlib.util, os, sys, sysconfig\n"
             "missing = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]\n"
             "print(' '.join(missing))\n"
             "marker = os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')\n"
             "print('managed' if sys.prefix == getattr(sys, 'base_prefix', sys.prefix) "
             "and os.path.exists(marker) else '')")
    try:
        proc = accounts.run([path, "-c", probe, *modules], account, capture_output=True, text=True,
                            timeout=_VERSION_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CheckFailure("python-not-runnable", f"{path} cannot be run: {exc}")
    if proc.returncode != 0:
        return CheckFailure("modules-unknown", f"{path} could not check its modules: "
                            f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    answer = proc.stdout.splitlines()
    missing = answer[0].split() if answer else []
    if not missing:
        return None
    names = ", ".join(missing)
    if len(answer) > 1 and answer[1].strip() == "managed":
        fix = externally_managed_fix(path, missing)
        return CheckFailure("modules-missing", f"{path} cannot import {names}, and pip may not install into it: "
                            f"{path} is the distribution's own Python, whose packages the distribution manages "
                            f"(pip refuses with externally-managed-environment). {fix}.")
    argv = [path, "-m", "pip", "install", *missing]
    command = " ".join(argv)
    return CheckFailure("modules-missing", f"{path} cannot import {names}; install with: {command}",
                        fix=command, fix_argv=argv)


def externally_managed_fix(path: str, modules: list[str]) -> str:
    """What gives a distribution's own Python (PEP 668) ``modules``: its packages, or a virtualenv."""
    venv = "/opt/python-venv"
    packages = " ".join(f"python3-{m}" for m in modules)
    return (f"Install the distribution's package (Debian and Ubuntu: apt-get install {packages}), or make a "
            f"virtualenv of your own and use its interpreter: {path} -m venv {venv} && "
            f"{venv}/bin/pip install {' '.join(modules)}, then give {venv}/bin/python as the Python executable")


def is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


RESOLVE_TIMEOUT = 3.0
# getaddrinfo answers that mean "this name does not exist", as opposed to "ask again later".
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


class ResolveError(Exception):
    """A host name that did not resolve. ``definite``: the resolver said the name does not
    exist; otherwise resolution itself failed or timed out (the name may be fine)."""

    def __init__(self, host: str, reason: str, definite: bool) -> None:
        super().__init__(f"{host} cannot be resolved ({reason})")
        self.host = host
        self.reason = reason
        self.definite = definite


def _getaddrinfo(host: str) -> set[str]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return {info[4][0] for info in infos}


def resolve_host(host: str, timeout: float = RESOLVE_TIMEOUT,
                 resolver: Callable[[str], set[str]] = _getaddrinfo) -> set[str]:
    """The addresses of ``host`` (an IP address is itself), or ResolveError within ``timeout`` s.

    getaddrinfo has no timeout of its own and a dead name server makes it wait for
    the resolver's retries (tens of seconds), so it runs in a daemon thread that is
    abandoned when the time is up.
    """
    try:
        return {str(ipaddress.ip_address(host.split("%")[0]))}
    except ValueError:
        pass
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["addresses"] = resolver(host)
        except (OSError, UnicodeError) as exc:
            result["error"] = exc

    worker = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ResolveError(host, f"no answer from the name service within {timeout:g} s", definite=False)
    error = result.get("error")
    if isinstance(error, socket.gaierror):
        raise ResolveError(host, error.strerror or str(error), definite=error.errno in _NO_SUCH_NAME)
    if error is not None:
        raise ResolveError(host, str(error), definite=isinstance(error, UnicodeError))
    addresses = result.get("addresses")
    assert isinstance(addresses, set)
    return addresses


def check_host_resolves(host: str, timeout: float = RESOLVE_TIMEOUT) -> CheckFailure | None:
    """The server name resolves; the failure says which name and what to enter instead.

    code "address-unknown" when the name does not exist, "resolver-unavailable" when
    the name service did not answer (a warning rather than a refusal may fit then).
    """
    if is_wildcard(host):
        return None
    try:
        resolve_host(host, timeout)
    except ResolveError as exc:
        return _unresolved(exc)
    return None


def _unresolved(exc: ResolveError) -> CheckFailure:
    fix = (f"correct the server name {exc.host}, or enter an IP address of the host where the server "
           "should listen (127.0.0.1 for this host)")
    if exc.definite:
        return CheckFailure("address-unknown", f"the server name {exc.host} does not resolve ({exc.reason}): {fix}",
                            fix=fix)
    return CheckFailure("resolver-unavailable",
                        f"the server name {exc.host} could not be resolved now ({exc.reason}): check the host's "
                        f"name service, or {fix}", fix=fix)


def _addresses_of(host: str) -> set[str]:
    try:
        return resolve_host(host)
    except ResolveError as exc:
        raise socket.gaierror(socket.EAI_NONAME if exc.definite else socket.EAI_AGAIN, exc.reason) from None


def port_holder(host: str, port: int) -> tuple[int | None, str] | None:
    """Who listens on ``host:port``: (pid, process name), (None, why) when the port is
    taken by a process we cannot see, or None when the port is free.

    psutil tells us the holder; the bind test is the truth for what psutil cannot
    see (processes of other users, other network namespaces).
    """
    import psutil

    try:
        wanted = {str(ipaddress.ip_address(a)) for a in _addresses_of(host)} if not is_wildcard(host) else set()
    except (socket.gaierror, ValueError):
        wanted = set()
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        connections = []
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        addr = conn.laddr.ip
        # A wildcard listener holds the port on every address, and a wildcard bind
        # collides with any listener of that port.
        if is_wildcard(host) or is_wildcard(addr) or addr in wanted:
            if conn.pid is None:
                return (None, "held by a process we cannot see")
            try:
                name = psutil.Process(conn.pid).name()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                name = "unknown"
            return (conn.pid, name)
    if not _bind_free(host, port):
        return (None, "held by a process we cannot see")
    return None


def _bind_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as servers use it: a port in TIME_WAIT is free for them too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port(host: str, start: int, avoid: set[int] | frozenset[int] = frozenset(), tries: int = 200) -> int | None:
    """The first port from ``start`` up that nothing listens on at ``host`` now and that is not in
    ``avoid`` (ports promised to others: the portal's own, other definitions'); None if none of
    ``tries`` is. For a suggestion in a message: a bind test, so it costs a socket per port."""
    for port in range(max(start, 1), min(start + tries, 65536)):
        if port not in avoid and _bind_free(host, port):
            return port
    return None


def port_advice(host: str, port: int, avoid: set[int] | frozenset[int] = frozenset()) -> str:
    """"choose another port, e.g. 25002" with a port that is free now."""
    other = free_port(host, port + 1, avoid | {port})
    return f"choose another port, e.g. {other}" if other else "choose another port"


def check_port_free(host: str, port: int, reserved: dict[int, str] | None = None,
                    avoid: set[int] | frozenset[int] = frozenset()) -> CheckFailure | None:
    """The port is not already in use on ``host``. ``reserved``: ports the portal keeps for its own
    parts, by what holds them ("the portal's front for web applications (PORTAL_APPS_PORT)"), said as
    such rather than as another program to stop; ``avoid``: ports a suggestion must not name."""
    holder = port_holder(host, port)
    if holder is None:
        return None
    avoid = set(avoid) | set(reserved or {})
    own = (reserved or {}).get(port)
    if own:
        return CheckFailure("port-in-use", f"port {port} on {host or '0.0.0.0'} is {own}, which the portal itself "
                            f"listens on: {port_advice(host, port, avoid)}")
    pid, name = holder
    who = f"by pid {pid} ({name})" if pid is not None else "(held by a process we cannot see, e.g. of another user)"
    return CheckFailure("port-in-use", f"port {port} on {host or '0.0.0.0'} is already in use {who}; "
                        f"stop that process or {port_advice(host, port, avoid)}")


def local_addresses() -> set[str]:
    import psutil

    addresses = set()
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                addresses.add(addr.address.split("%")[0])  # drop an IPv6 zone (fe80::1%eth0)
    return addresses


def loopback_bindable(address: str) -> bool:
    """A loopback address that is not an interface's own (127.0.0.2, 127.0.0.3, ...) but where a
    server can listen all the same: Linux routes the whole of 127.0.0.0/8 to lo, as several hosts
    simulated on one machine use it. The kernel's bind says so; only loopback addresses are asked,
    so that a host with ip_nonlocal_bind on still refuses another machine's address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if not ip.is_loopback:
        return False
    try:
        with socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
    except OSError:
        return False
    return True


def check_bind_address(host: str) -> CheckFailure | None:
    """``host`` (a name is resolved) is an address of this machine, or a wildcard."""
    if is_wildcard(host):
        return None
    try:
        resolved = resolve_host(host)
    except ResolveError as exc:
        return _unresolved(exc)
    local = local_addresses()
    if resolved & local or any(loopback_bindable(address) for address in resolved):
        return None
    shown = host if host in resolved else f"{host} ({', '.join(sorted(resolved))})"
    return CheckFailure("address-not-local", f"{shown} is not an address of this host ({socket.gethostname()}): "
                        "run this server on a worker on that host, or use 127.0.0.1")


# Paths a person typed --------------------------------------------------------------

# Linux's limits (NAME_MAX, PATH_MAX): beyond them os.stat, realpath's lookups and open raise
# ENAMETOOLONG, which none of the checks below expect; so a path is measured before it is looked up.
NAME_MAX = 255
PATH_MAX = 4096


def shown_path(path: str, limit: int = 120) -> str:
    """A path as a message shows it: a very long one is cut in the middle."""
    return path if len(path) <= limit else f"{path[:limit - 30]}…{path[-25:]}"


def path_too_long(path: str) -> str | None:
    """Why the file system cannot even look ``path`` up (a name over 255 bytes, or the whole over
    4,095), in words that say what to do; None when its lengths are fine."""
    data = path.encode("utf-8", "surrogatepass")
    if len(data) >= PATH_MAX:
        return (f"{shown_path(path)} is too long for the file system: a path may have at most "
                f"{PATH_MAX - 1:,} bytes and this one has {len(data):,}; choose a shorter path")
    for name in data.split(b"/"):
        if len(name) > NAME_MAX:
            text = name.decode("utf-8", "replace")
            return (f"{shown_path(path)} is too long for the file system: the name “{shown_path(text, 40)}” "
                    f"has {len(name):,} bytes, and a file or folder name may have at most {NAME_MAX}; "
                    "choose a shorter name")
    return None


# Files a process runs or starts in -------------------------------------------------

# coreutils' test(1): asks the kernel, as the account, whether it may run or enter a path (os.access
# asks as the portal's user only, and root may do nearly anything).
_TEST = "/usr/bin/test" if os.path.exists("/usr/bin/test") else "/bin/test"


def may_access(path: str, flags: list[str], account: Account | None) -> bool:
    """Whether ``account`` (None: this process's user) passes test(1)'s ``flags`` (-x, -r) on ``path``,
    every folder on the way included."""
    if account is None:
        mode = (os.X_OK if "-x" in flags else 0) | (os.R_OK if "-r" in flags else 0)
        return os.access(path, mode)
    argv = [_TEST]
    for flag in flags:
        argv += [*(["-a"] if len(argv) > 1 else []), flag, path]
    try:
        done = accounts.run(argv, account, stdin=subprocess.DEVNULL, capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _who(account: Account | None) -> str:
    return f"{account.describe()}, the user it runs as" if account else "the portal's user, which it runs as"


def check_executable(path: str, account: Account | None = None) -> CheckFailure | None:
    """``path`` is a file that ``account`` may run."""
    if not os.path.isabs(path):
        return CheckFailure("program-relative", f"{path} is not a full path; give the program's full path, "
                            "e.g. /usr/bin/python3")
    too_long = path_too_long(path)
    if too_long:
        return CheckFailure("program-too-long", too_long)
    if not os.path.exists(path):
        return CheckFailure("program-missing", f"{path} does not exist on this host; install it, or correct "
                            "the command")
    if os.path.isdir(path):
        return CheckFailure("program-is-folder", f"{path} is a folder, not a program; name the program itself")
    if not may_access(path, ["-x"], account):
        return CheckFailure("program-not-executable", f"{path} cannot be run by {_who(account)}: make it "
                            f"executable for that user (chmod o+x {path}, and o+x on its folders), or choose "
                            "Run as a user who may run it", fix=f"chmod o+x {path}")
    return None


def check_directory(path: str, account: Account | None = None) -> CheckFailure | None:
    """``path`` is a folder that ``account`` may enter and read (a working directory)."""
    if not os.path.isdir(path):
        what = "is not a folder" if os.path.exists(path) else "does not exist on this host"
        return CheckFailure("directory-missing", f"the working directory {path} {what}; create it, or "
                            "correct the definition")
    if not may_access(path, ["-r", "-x"], account):
        return CheckFailure("directory-closed", f"the working directory {path} cannot be entered and read by "
                            f"{_who(account)}: open it to that user (chmod o+rx {path}, and o+x on its "
                            "folders), or choose another folder", fix=f"chmod o+rx {path}")
    return None


# Log files ------------------------------------------------------------------------


def check_log_file(
    path: str, roots: list[str], *, var_dir: str, run_dir: str | None = None, own_default: str | None = None,
    default_folders: dict[str, str] | None = None, label: str = "process",
) -> CheckFailure | None:
    """A definition's log file may be read by every Viewer and is appended to and
    rotated by the keeper: it must be a regular file of the portal's own, in a
    log folder.

    ``roots`` are the resolved log folders (var/log/ and PORTAL_LOG_ROOTS);
    ``run_dir`` is the keeper's run directory, whose record names the log files
    that keeper created; ``own_default`` is the definition's default log file,
    which is the portal's by construction; ``default_folders`` are the folders of
    every kind's default logs, each with what its kind is called ("gateway"), where
    no definition may choose a log file but its own default; ``label`` names the
    definition's own kind in messages.
    """
    import stat

    from portal.process.logtail import created_here, kind_of, within

    where = (f"log files may be only in {', '.join(roots)} (an administrator adds folders with "
             "PORTAL_LOG_ROOTS); leave the field blank for the default log")
    if not os.path.isabs(path):
        return CheckFailure("log-file-relative", f"{path} is not a full path: {where}")
    too_long = path_too_long(path)
    if too_long:
        return CheckFailure("log-file-too-long", too_long)
    name = os.path.basename(path)
    if name in ("", ".", ".."):
        return CheckFailure("log-file-folder", f"{path} names a folder, not a file: {where}")
    folder = os.path.realpath(os.path.dirname(path))
    real = os.path.join(folder, name)
    var_dir = os.path.realpath(var_dir)
    private = within(real, var_dir) and not within(real, os.path.join(var_dir, "log"))
    if private or not any(within(real, root) for root in roots):
        via = f" (through a symbolic link, it is {real})" if os.path.normpath(path) != real else ""
        what = "inside the portal's private folder" if private else "outside the log folders"
        return CheckFailure("log-file-outside", f"{path}{via} is {what}: {where}")
    for defaults, kind in (default_folders or {}).items():
        defaults = os.path.realpath(defaults)
        if within(real, defaults) and real != own_default:
            return CheckFailure("log-file-other-default", f"{path} is in {defaults}, which holds each {kind}'s "
                                f"default log: {where}")
    if real == own_default and not os.path.lexists(real):
        return None  # the keeper makes the portal's own folder for it
    if not os.path.isdir(folder):
        return CheckFailure("log-folder-missing", f"the folder {folder} does not exist: create it, or {where}")
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return None  # the keeper creates it, and records that it did
    except OSError as exc:
        return CheckFailure("log-file-unreadable", f"{path} cannot be examined ({exc.strerror}): {where}")
    if not stat.S_ISREG(st.st_mode):
        return CheckFailure("log-file-not-regular", f"{path} is {kind_of(st.st_mode)}, not a regular file: "
                            f"a log file must be a plain file; {where}")
    if st.st_nlink != 1:
        return CheckFailure("log-file-linked", f"{path} has {st.st_nlink} hard links: a log file must be a "
                            "file of its own; choose a new file name")
    if real == own_default or (run_dir and created_here(run_dir, real, st)):
        return None
    return CheckFailure("log-file-not-ours", f"{path} already exists and the portal did not create it for this "
                        f"{label}: the portal takes over only a log file it created, so that it never appends to, "
                        "rotates or shows another program's file. Choose a file name that does not exist yet "
                        "(the portal creates it at the first start), or remove that file")


# Who can connect ---------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Does ``host`` listen only on this machine's loopback? Written, not resolved:
    only 127.0.0.0/8, ::1 and "localhost" count (a name's address may change later)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip()).is_loopback
    except ValueError:
        return False
