"""The keeper: one small detached process per managed server (like podman's conmon).

Run as ``python -m portal.process.keeper RUN_DIR [--adopt] [--trigger T]``; callers use
:func:`launch` / :func:`adopt` instead of running it by hand.

Why a keeper: a Celery task must never own a child's lifetime (pool processes are
replaced and killed, redelivered tasks start duplicates, a service manager stopping the
worker kills its group). The keeper is started by a double fork into its own session,
so it is nobody's child but init's; it owns the server process, sends its output to a
log file, notices its exit at once, applies the restart policy and records everything
in the run directory, which is the only interface between the keeper and the portal.

Run directory layout (the directory is 0700, files with secrets 0600)::

    RUN_DIR/
      spec.json          the Spec (0600; the only file holding secret values)
      keeper.lock        flock held for the keeper's whole life: one keeper per RUN_DIR
      keeper.pid         {"pid", "create_time", "started_at", "mode"} of the current keeper
      keeper.log         the keeper's own diagnostics (secrets masked)
      status.json        the current truth, replaced atomically (tmp + os.replace)
      events.jsonl       one JSON line per state transition; seq grows across keepers
      stop_request.json  transient: who asked for the stop that the next SIGTERM means
      output.log         the child's stdout+stderr (unless spec.log_file says otherwise),
      output.log.1 ..N   rotated by size with copytruncate

Lifecycle (supervisor's states, see states.py)::

    stopped --launch--> starting --probe answers--> running --exit--> exited
                          |                            |                 | policy says restart
                          | exits early / not ready    | SIGTERM         v
                          v in init_timeout            v              (delay) starting ...
                        backoff --delay--> starting  stopping --> stopped (keeper exits 0)
                          | after max_quick_failures
                          v
                        fatal (keeper exits; a person must start it again)

A start that exits or is not ready within ``init_timeout`` is a failed start: it is
killed, the state goes to backoff and the next attempt waits
``min(backoff_base * 2^(n-1), backoff_max)``; the n-th consecutive failure (or run
shorter than ``quick_secs``) makes it fatal. As in supervisor, failed starts are retried
whatever the restart policy; the policy decides what happens after an exit from running.
A run that was ready but lasted less than ``quick_secs`` counts as a quick failure too;
after ``max_quick_failures`` of those in a row the keeper gives up: exited, then fatal.

SIGTERM to the keeper means "stop": SIGTERM to the child's process group (and to every
descendant found with psutil outside it), ``stop_timeout`` seconds of grace, then
SIGKILL to all of them; then state stopped and the keeper exits 0.

If the keeper itself is killed, the child lives on (its output goes to a file, not to
a pipe the keeper reads). ``--adopt`` starts a new keeper that takes over that child
(verified by pid and create_time), watching it by polling since it is not our child
(so its exit code cannot be known).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from portal.process import identity
from portal.process.identity import ProcessIdentity
from portal.process.logtail import open_for_append, open_regular, rotate_copytruncate, within
from portal.process.spec import Spec, inherited_env
from portal.process.states import State, check_transition, is_active

SPEC_FILE = "spec.json"
STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"
LOCK_FILE = "keeper.lock"
PID_FILE = "keeper.pid"
KEEPER_LOG = "keeper.log"
STOP_REQUEST_FILE = "stop_request.json"
DEFAULT_OUTPUT_LOG = "output.log"

PROBE_INTERVAL = 0.02  # between readiness probes while starting
DEFAULT_PROBE_TIMEOUT = 0.25  # one probe attempt, unless the probe says ("timeout")
HOUSEKEEPING_INTERVAL = 0.5  # log rotation, descendant snapshot, first lines
ADOPT_POLL_INTERVAL = 0.05  # an adopted process is not our child: we must poll it
FIRST_LINES = 20
FIRST_LINES_WINDOW = 30.0  # stop looking for first lines after this long

# The project root, so that ``python -m portal.process.keeper`` finds the package
# without touching PYTHONPATH (which the child would inherit).
_PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Exit codes of the keeper's first (intermediate) process, read by launch().
_RC_OK, _RC_BUSY, _RC_ERROR = 0, 3, 4

log = logging.getLogger("portal.process.keeper")


class KeeperError(Exception):
    """Base class of the errors of this module; the message is meant for operators."""


class KeeperBusy(KeeperError):
    """Another keeper holds RUN_DIR/keeper.lock."""


class AlreadyRunning(KeeperError):
    """The process of this run dir is alive without a keeper (adopt or stop it)."""


class LaunchError(KeeperError):
    """The keeper could not be started, or had nothing to adopt."""


@dataclass(frozen=True)
class KeeperInfo:
    run_dir: Path
    keeper: ProcessIdentity
    mode: str  # "launch" or "adopt"


# --------------------------------------------------------------------------- files


def _write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Readers see the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_spec(run_dir: Path | str) -> Spec:
    return Spec.from_json(Path(run_dir, SPEC_FILE).read_text(encoding="utf-8"))


def _mkdir_private(path: Path) -> None:
    """mkdir -p with 0700 for each folder created, whatever the caller's umask
    (Path.mkdir gives the parents it creates the default mode)."""
    for folder in reversed([p for p in (path, *path.parents) if not p.is_dir()]):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)


def write_spec(spec: Spec, run_dir: Path | str) -> None:
    """Create RUN_DIR (0700) and write spec.json (0600)."""
    run_dir = Path(run_dir)
    _mkdir_private(run_dir)
    os.chmod(run_dir, 0o700)
    _write_atomic(run_dir / SPEC_FILE, spec.to_json(), 0o600)


def read_status(run_dir: Path | str) -> dict[str, Any] | None:
    """The current status.json, or None when the process was never started."""
    return _read_json(Path(run_dir, STATUS_FILE))


def read_events(run_dir: Path | str, after_seq: int = 0) -> list[dict[str, Any]]:
    """Transitions with ``seq > after_seq``, oldest first."""
    events: list[dict[str, Any]] = []
    try:
        with open(Path(run_dir, EVENTS_FILE), encoding="utf-8") as f:
            for line in f:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line being written right now
                if isinstance(event, dict) and event.get("seq", 0) > after_seq:
                    events.append(event)
    except FileNotFoundError:
        pass
    return events


def _last_seq(run_dir: Path) -> int:
    events = read_events(run_dir)
    return max((e.get("seq", 0) for e in events), default=0)


def read_keeper_identity(run_dir: Path | str) -> ProcessIdentity | None:
    data = _read_json(Path(run_dir, PID_FILE))
    if not data:
        return None
    return ProcessIdentity.from_optional(data.get("pid"), data.get("create_time"))


def keeper_alive(run_dir: Path | str) -> bool:
    """True while the keeper recorded in RUN_DIR/keeper.pid is alive (pid reuse checked)."""
    return identity.is_alive(read_keeper_identity(run_dir))


def child_identity(status: dict[str, Any] | None) -> ProcessIdentity | None:
    if not status:
        return None
    return ProcessIdentity.from_optional(status.get("pid"), status.get("create_time"))


def _try_lock(run_dir: Path) -> int | None:
    """The fd holding RUN_DIR/keeper.lock, or None when another process holds it."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            return None
        raise
    return fd


def _lock_unless_keeper(run_dir: Path, grace: float = 1.0) -> int | None:
    """The lock, or None while a live keeper holds it.

    A keeper that was just killed may still hold the lock for a moment while the kernel
    tears it down (its files are released after it stops running), so a lock held by a
    keeper that is no longer alive is retried for up to ``grace`` seconds.
    """
    deadline = time.monotonic() + grace
    while True:
        fd = _try_lock(run_dir)
        if fd is not None or keeper_alive(run_dir) or time.monotonic() >= deadline:
            return fd
        time.sleep(0.01)


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _redact_obj(obj: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: _redact_obj(v, redact) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_obj(v, redact) for v in obj]
    return obj


def signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def describe_exit(exit_code: int | None, sig: str | None) -> str:
    if sig:
        return f"killed by {sig}"
    if exit_code is None:
        return "exit status unknown"
    return f"exit code {exit_code}"


# --------------------------------------------------------------------------- journal


_EMPTY_STATUS: dict[str, Any] = {
    "name": None,
    "state": State.STOPPED.value,
    "pid": None,
    "create_time": None,
    "keeper_pid": None,
    "keeper_create_time": None,
    "run_started_at": None,
    "ready_at": None,
    "time_to_ready": None,
    "exit_code": None,
    "signal": None,
    "restarts": 0,
    "first_lines": [],
    "command": None,
    "log_file": None,
    "adopted": False,
    "error": None,
    "updated_at": None,
}

_UNSET: Any = object()


class Journal:
    """Writes status.json and events.jsonl; every state change goes through here.

    Only one writer exists at a time: the keeper, or whoever holds keeper.lock while no
    keeper runs (request_stop, reconcile).
    """

    def __init__(self, run_dir: Path, spec: Spec) -> None:
        self.run_dir = run_dir
        self.spec = spec
        self.status: dict[str, Any] = {**_EMPTY_STATUS, **(read_status(run_dir) or {})}
        self.status["name"] = spec.name
        self.status["command"] = spec.display_command()
        self.status["log_file"] = str(log_file_of(spec, run_dir))
        self.state = State(self.status.get("state") or State.STOPPED)
        self.seq = _last_seq(run_dir)
        self.host = socket.gethostname()

    def redact(self, text: str) -> str:
        return self.spec.redact(text)

    def transition(
        self,
        to: State,
        *,
        trigger: str,
        message: str = "",
        exit_code: int | None = None,
        sig: str | None = None,
        expected: bool | None = None,
        error: Any = _UNSET,
        **fields: Any,
    ) -> dict[str, Any]:
        """Check, record (events.jsonl) and publish (status.json) one state change."""
        check_transition(self.state, to)
        self.seq += 1
        event = {
            "seq": self.seq,
            "time": time.time(),
            "from": self.state.value,
            "to": to.value,
            "pid": fields.get("pid", self.status.get("pid")),
            "exit_code": exit_code,
            "signal": sig,
            "expected": expected,
            "trigger": trigger,
            "message": message,
            "host": self.host,
        }
        line = json.dumps(_redact_obj(event, self.redact)) + "\n"
        fd = os.open(self.run_dir / EVENTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())  # one write on O_APPEND: lines never interleave
        finally:
            os.close(fd)
        log.info("%s -> %s (%s) %s", self.state.value, to.value, trigger, message)
        self.state = to
        self.status.update(fields)
        self.status.update(state=to.value, exit_code=exit_code, signal=sig)
        if error is not _UNSET:
            self.status["error"] = error
        self.write_status()
        return event

    def update(self, **fields: Any) -> None:
        self.status.update(fields)
        self.write_status()

    def write_status(self) -> None:
        self.status["updated_at"] = time.time()
        data = _redact_obj(self.status, self.redact)
        _write_atomic(self.run_dir / STATUS_FILE, json.dumps(data, indent=1), 0o600)


def log_file_of(spec: Spec, run_dir: Path) -> Path:
    return Path(spec.log_file) if spec.log_file else run_dir / DEFAULT_OUTPUT_LOG


def _reconcile_locked(journal: Journal, trigger: str = "reconcile") -> None:
    """With the lock held and no keeper: make an active state that nobody keeps true.

    Called only when the process is known to be gone (a live one is adopted or stopped).
    """
    state = journal.state
    gone = "its keeper died and the process is gone; exit status unknown"
    if state in (State.STARTING, State.RUNNING):
        journal.transition(State.EXITED, trigger=trigger, message=gone, error=gone)
    elif state is State.STOPPING:
        journal.transition(State.STOPPED, trigger=trigger, message=gone)
    elif state is State.BACKOFF:
        msg = "its keeper died during backoff; no retry will come"
        journal.transition(State.FATAL, trigger=trigger, message=msg, error=msg)


def reconcile(run_dir: Path | str) -> dict[str, Any] | None:
    """Bring status.json in line with reality when no keeper runs; returns the status.

    A process that is still alive without its keeper keeps its state, with an error
    saying so (``adopt`` or ``request_stop`` it). Does nothing while a keeper runs.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status is None or not is_active(status.get("state") or "stopped"):
        return status
    fd = _lock_unless_keeper(run_dir)
    if fd is None:
        return status  # a keeper runs: it owns the truth
    try:
        journal = Journal(run_dir, read_spec(run_dir))
        if identity.is_alive(child_identity(journal.status)):
            journal.update(error="the keeper died; the process runs unsupervised: adopt or stop it")
        else:
            _reconcile_locked(journal)
        return journal.status
    finally:
        _unlock(fd)


# --------------------------------------------------------------------------- probes


def _probe_host(host: str | None) -> str:
    # A server bound to the wildcard address is reached through loopback.
    if not host or host == "0.0.0.0":
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _tcp_probe(host: str | None, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((_probe_host(host), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _http_probe(url: str, timeout: float) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def _gateway_probe(probe: dict[str, Any], timeout: float) -> bool:
    """Ping with the gateway protocol."""
    # Imported lazily: keepers of other kinds of process never pay for it.
    from gateways.client import connect

    conn = None
    try:
        conn = connect(
            _probe_host(probe.get("host")), int(probe["port"]),
            passphrase=probe.get("passphrase"), verifier=probe.get("verifier"), timeout=timeout,
        )
        return bool(conn.ping())
    except Exception:
        return False
    finally:
        close = getattr(conn, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def probe_once(probe: dict[str, Any], timeout: float = 0.25) -> bool:
    """One readiness probe (see Spec.probe); True when the server answers."""
    kind = probe.get("kind")
    if kind == "tcp":
        return _tcp_probe(probe.get("host"), probe["port"], timeout)
    if kind == "http":
        return _http_probe(probe["url"], timeout)
    if kind == "gateway":
        return _gateway_probe(probe, timeout)
    raise ValueError(f"unknown probe kind {kind!r}")


# --------------------------------------------------------------------------- keeper


class _Child:
    """The process being kept: a Popen child, or an adopted process we can only poll."""

    def __init__(self, ident: ProcessIdentity, started_at: float, popen: subprocess.Popen[bytes] | None,
                 wake: Callable[[], None]) -> None:
        self.ident = ident
        self.started_at = started_at
        self.popen = popen
        self.adopted = popen is None
        self.returncode: int | None = None
        self.exited = threading.Event()
        self.proc = identity.process_if_ours(ident)
        if popen is not None:
            # A blocking wait in a thread notices the exit at once (no polling) and
            # wakes the main loop through the wake-up pipe.
            def wait() -> None:
                self.returncode = popen.wait()
                self.exited.set()
                wake()

            threading.Thread(target=wait, name="child-wait", daemon=True).start()

    def has_exited(self) -> bool:
        if (self.popen is None and not self.exited.is_set()
                and (self.proc is None or not identity.proc_alive(self.proc))):
            self.exited.set()  # exit status unknown: we are not its parent
        return self.exited.is_set()

    def exit_info(self) -> tuple[int | None, str | None]:
        rc = self.returncode
        if rc is None:
            return None, None
        if rc < 0:
            return None, signal_name(rc)
        return rc, None


class _Outcome:
    READY = "ready"
    EXITED = "exited"
    TIMEOUT = "timeout"
    STOP = "stop"


class Keeper:
    def __init__(self, run_dir: Path, spec: Spec, trigger: str = "user") -> None:
        self.run_dir = run_dir
        self.spec = spec
        self.trigger = trigger
        self.journal = Journal(run_dir, spec)
        self.log_path = log_file_of(spec, run_dir)
        self.stop_requested = False
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.child: _Child | None = None
        self.known_descendants: dict[int, Any] = {}
        self.run_offset = 0
        self.first_lines_done = False
        self.next_housekeeping = 0.0
        self.restarts = int(self.journal.status.get("restarts") or 0)
        self.probe = spec.probe  # with its host resolved at each spawn

    # -- plumbing ------------------------------------------------------------------

    def install_signals(self) -> None:
        def on_stop(signum: int, frame: Any) -> None:
            self.stop_requested = True

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        # The handler runs only between bytecodes; the wake-up fd makes select() return.
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)

    def wake(self) -> None:
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:
            pass  # already a wake-up pending

    def pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning at once on a signal or a child exit."""
        if seconds > 0 and not self.stop_requested:
            select.select([self.wake_r], [], [], seconds)
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def stop_trigger(self) -> str:
        """Who asked for the stop that our SIGTERM means (written by request_stop)."""
        path = self.run_dir / STOP_REQUEST_FILE
        data = _read_json(path) or {}
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return str(data.get("trigger") or "signal")

    def write_pid_file(self, mode: str) -> ProcessIdentity:
        me = identity.identity_of(os.getpid())
        assert me is not None
        _write_atomic(self.run_dir / PID_FILE, json.dumps(
            {**me.to_dict(), "started_at": time.time(), "mode": mode}), 0o600)
        self.journal.status.update(keeper_pid=me.pid, keeper_create_time=me.create_time)
        return me

    # -- housekeeping --------------------------------------------------------------

    def housekeeping(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_housekeeping:
            return
        self.next_housekeeping = now + HOUSEKEEPING_INTERVAL
        child = self.child
        if child is not None and child.proc is not None:
            # Gone meanwhile: the exit path handles it.
            with contextlib.suppress(psutil.Error):
                for proc in child.proc.children(recursive=True):
                    self.known_descendants[proc.pid] = proc
        self.collect_first_lines()
        try:
            if rotate_copytruncate(self.log_path, self.spec.log_max_bytes, self.spec.log_backups):
                log.info("rotated %s", self.log_path)
                self.first_lines_done = True  # the run's first lines moved to .1
                self.run_offset = 0
        except OSError as exc:
            log.warning("cannot rotate %s: %s", self.log_path, exc)

    def read_run_output(self, limit: int = 64 * 1024, keep_partial: bool = True) -> list[str]:
        """Lines this run wrote to the log (from where it started)."""
        try:
            # Never a link or a FIFO (swapped in after the start): that read would block the keeper.
            with os.fdopen(open_regular(self.log_path), "rb") as f:
                f.seek(self.run_offset)
                data = f.read(limit)
        except OSError:
            return []
        if not keep_partial and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]  # a line still being written
        return data.decode("utf-8", errors="replace").splitlines()

    def collect_first_lines(self, final: bool = False) -> None:
        child = self.child
        if self.first_lines_done or child is None or child.adopted:
            return
        lines = self.read_run_output(keep_partial=final)
        first = [line[:500] for line in lines[:FIRST_LINES]]
        if first != self.journal.status.get("first_lines"):
            self.journal.update(first_lines=first)
        if len(first) >= FIRST_LINES or time.time() - child.started_at > FIRST_LINES_WINDOW:
            self.first_lines_done = True

    def last_output_line(self) -> str | None:
        for line in reversed(self.read_run_output(1024 * 1024)[-50:]):
            if line.strip():
                return line.strip()[:300]
        return None

    # -- starting --------------------------------------------------------------------

    def child_env(self) -> dict[str, str]:
        # The keeper's environment is already allowlisted (see _start_keeper); filter
        # again so that a keeper started by hand passes on no more.
        return self.spec.child_env(dict(os.environ))

    def resolve_probe(self) -> str | None:
        """Resolve the probe's host name once per start, with a deadline; an error message if it fails.

        Probing by name would resolve again on every attempt, and a name service that
        does not answer would hold each attempt far beyond the initialization timeout.
        """
        probe = self.spec.probe
        self.probe = probe
        if not probe or probe.get("kind") not in ("tcp", "gateway"):
            return None
        host = _probe_host(probe.get("host"))
        from portal.process.checks import RESOLVE_TIMEOUT, ResolveError, resolve_host  # only needs socket

        try:
            addresses = resolve_host(host, timeout=min(RESOLVE_TIMEOUT, max(0.5, self.spec.init_timeout)))
        except ResolveError as exc:
            return f"{exc}: the probe cannot reach the server; use an IP address, or fix the name"
        # IPv4 first, as create_connection would try it for most names.
        self.probe = {**probe, "host": sorted(addresses, key=lambda a: (":" in a, a))[0]}
        return None

    def port_in_use_error(self) -> str | None:
        """A probe that answers before we start would make a stranger look like ours."""
        probe = self.probe
        if not probe or probe.get("kind") not in ("tcp", "gateway"):
            return None
        if not _tcp_probe(probe.get("host"), probe["port"], 0.2):
            return None
        from portal.process.checks import port_holder  # lazily: only on this error path

        host = probe.get("host") or "127.0.0.1"
        holder = port_holder(host, int(probe["port"]))
        who = f"by pid {holder[0]} ({holder[1]})" if holder and holder[0] else "(held by a process we cannot see)"
        return f"port {probe['port']} on {host} is already in use {who}; stop that process or choose another port"

    def spawn(self) -> str | None:
        """Start the child; returns an error message when it could not be started."""
        busy = self.resolve_probe() or self.port_in_use_error()
        if busy:
            return busy
        roots = self.spec.log_roots
        folder = os.path.realpath(self.log_path.parent)
        if roots is None or any(within(folder, root) for root in roots):
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Checked before anything is rotated or written: only a regular file
            # of its own, in the log folders (see logtail.open_for_append).
            fd = open_for_append(self.log_path, roots, self.run_dir)
        except OSError as exc:
            return f"log file refused: {exc.strerror or exc}"
        try:
            rotate_copytruncate(self.log_path, self.spec.log_max_bytes, self.spec.log_backups)
            self.run_offset = os.fstat(fd).st_size
            popen = subprocess.Popen(
                self.spec.argv,
                cwd=self.spec.cwd or self.run_dir,
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                stdout=fd,  # straight to the file: the child never blocks on a pipe
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,  # own group: SIGTERM/SIGKILL reach its whole tree
            )
        except OSError as exc:
            return f"cannot start {self.spec.argv[0]}: {exc.strerror or exc}"
        finally:
            os.close(fd)
        started_at = time.time()
        # psutil still sees the process as a zombie until the wait thread reaps it.
        ident = identity.identity_of(popen.pid) or ProcessIdentity(popen.pid, started_at)
        self.child = _Child(ident, started_at, popen, self.wake)
        self.known_descendants = {}
        self.first_lines_done = False
        self.journal.update(
            pid=ident.pid, create_time=ident.create_time, run_started_at=started_at,
            ready_at=None, time_to_ready=None, first_lines=[], adopted=False,
        )
        log.info("started pid %s: %s", ident.pid, self.spec.display_command())
        return None

    def wait_ready(self, child: _Child) -> str:
        spec = self.spec
        start = time.monotonic() - max(0.0, time.time() - child.started_at)
        deadline = start + spec.init_timeout
        no_probe_ready = start + min(spec.quick_secs, spec.init_timeout)
        attempt = float((self.probe or {}).get("timeout") or DEFAULT_PROBE_TIMEOUT)
        while True:
            if self.stop_requested:
                return _Outcome.STOP
            if child.has_exited():
                return _Outcome.EXITED
            now = time.monotonic()
            if self.probe is None:
                if now >= no_probe_ready:
                    return _Outcome.READY
            # One attempt may take the probe's own timeout (a gateway's connection
            # timeout): a slow but live server is not killed for answering in 0.3 s.
            elif probe_once(self.probe, timeout=max(0.05, min(attempt, deadline - now))):
                return _Outcome.EXITED if child.has_exited() else _Outcome.READY
            if time.monotonic() >= deadline:
                return _Outcome.TIMEOUT
            self.housekeeping()
            self.pause(PROBE_INTERVAL)

    def wait_exit(self, child: _Child) -> str:
        interval = ADOPT_POLL_INTERVAL if child.adopted else HOUSEKEEPING_INTERVAL
        while True:
            if self.stop_requested:
                return _Outcome.STOP
            if child.has_exited():
                return _Outcome.EXITED
            self.housekeeping()
            self.pause(interval)

    # -- stopping ----------------------------------------------------------------------

    def kill_tree(self, child: _Child, timeout: float) -> None:
        """SIGTERM the group and every known descendant, ``timeout`` grace, then SIGKILL."""
        self.housekeeping(force=True)  # a fresh snapshot of descendants before signalling
        extra = [p for p in self.known_descendants.values() if identity.proc_alive(p)]
        ok = identity.terminate_tree(
            child.ident, timeout, pgid=child.ident.pid, extra=extra, root_gone=child.has_exited,
        )
        if child.popen is not None:
            child.exited.wait(2.0)
        if not ok:
            log.warning("some processes of pid %s's tree survived SIGKILL", child.ident.pid)

    def cleanup_leftovers(self, child: _Child) -> None:
        """After the child's own exit, nothing it started may live on (a grandchild
        holding the port would make the restart fail)."""
        extra = [p for p in self.known_descendants.values() if identity.proc_alive(p)]
        group_alive = any(True for _ in _group_members(child.ident.pid))
        if extra or group_alive:
            log.info("stopping %d leftover processes of pid %s", len(extra), child.ident.pid)
            identity.terminate_tree(None, min(self.spec.stop_timeout, 1.0), pgid=child.ident.pid, extra=extra)
        self.known_descendants = {}

    def stop(self, child: _Child | None, trigger: str) -> int:
        if self.journal.state not in (State.STARTING, State.RUNNING, State.STOPPING):
            # backoff / exited: nothing runs; supervisor goes straight to stopped.
            self.journal.transition(State.STOPPED, trigger=trigger, message="stopped; no restart", error=None)
            return 0
        if self.journal.state is not State.STOPPING:
            pgid = child.ident.pid if child else "-"
            self.journal.transition(
                State.STOPPING, trigger=trigger,
                message=f"SIGTERM to process group {pgid}; SIGKILL after {self.spec.stop_timeout:g} s",
            )
        if child is None:
            self.journal.transition(State.STOPPED, trigger=trigger, message="stopped before it started",
                                    error=None)
            return 0
        self.kill_tree(child, self.spec.stop_timeout)
        exit_code, sig = child.exit_info()
        if sig == "SIGKILL":
            message = f"did not stop within {self.spec.stop_timeout:g} s of SIGTERM; killed"
        elif child.adopted:
            message = "stopped (adopted process: exit status unknown)"
        else:
            message = f"stopped ({sig or describe_exit(exit_code, sig)})"
        self.journal.transition(
            State.STOPPED, trigger=trigger, message=message, exit_code=exit_code, sig=sig,
            expected=True, error=None,
        )
        return 0

    # -- the loop ----------------------------------------------------------------------

    def run(self, adopted: _Child | None = None) -> int:
        """Keep the process until it is stopped, gives up (fatal) or exits for good.

        Without ``adopted``, the journal is already in state starting.
        """
        spec = self.spec
        failures = 0
        trigger = self.trigger
        first = adopted is None  # the first STARTING was recorded before launch() returned
        while True:
            if adopted is not None:
                child: _Child | None = adopted
                adopted = None
                outcome = _Outcome.READY if self.journal.state is State.RUNNING else self.wait_ready(child)
                error = None
            else:
                if not first:
                    self.journal.transition(State.STARTING, trigger=trigger, error=None,
                                            pid=None, create_time=None, exit_code=None, signal=None)
                first = False
                self.child = None
                error = None if self.stop_requested else self.spawn()
                child = self.child if error is None else None
                if self.stop_requested:
                    outcome = _Outcome.STOP
                elif child is None:
                    outcome = _Outcome.EXITED
                else:
                    outcome = self.wait_ready(child)

            if outcome == _Outcome.STOP:
                return self.stop(child, self.stop_trigger())

            if outcome == _Outcome.READY:
                assert child is not None
                if self.journal.state is not State.RUNNING:
                    ready_at = time.time()
                    took = ready_at - child.started_at
                    self.journal.transition(
                        State.RUNNING, trigger="keeper", message=f"ready after {took:.3f} s",
                        ready_at=ready_at, time_to_ready=round(took, 4), error=None,
                    )
                outcome = self.wait_exit(child)
                if outcome == _Outcome.STOP:
                    return self.stop(child, self.stop_trigger())
                # Exited from running.
                exit_code, sig = child.exit_info()
                self.collect_first_lines(final=True)
                self.cleanup_leftovers(child)
                # Death by a signal is never expected (supervisor's exitcodes are codes).
                expected = None if child.adopted else (False if sig else spec.is_expected_exit(exit_code))
                ran = time.time() - child.started_at
                quick = ran < spec.quick_secs
                failures = failures + 1 if quick else 0
                restart = spec.should_restart(expected)
                what = describe_exit(exit_code, sig)
                if child.adopted:
                    what += " (adopted process: the keeper is not its parent and cannot know)"
                message = f"exited after {ran:.2f} s: {what}"
                err = None if expected else f"{message}; last output: {self.last_output_line() or '(none)'}"
                give_up = restart and failures >= spec.max_quick_failures
                self.journal.transition(
                    State.EXITED, trigger="keeper", message=message, exit_code=exit_code, sig=sig,
                    expected=expected, error=err,
                )
                if give_up:
                    last = self.last_output_line()
                    msg = f"{message}; gave up after {failures} quick exits in a row"
                    msg += f"; last output: {last}" if last else ""
                    self.journal.transition(State.FATAL, trigger="keeper", message=msg, error=msg)
                    return 0
                if not restart:
                    return 0
                delay = spec.backoff_delay(failures)
                if delay:
                    self.journal.update(error=f"{message}; restarting in {delay:g} s")
                    self.sleep_or_stop(delay)
                if self.stop_requested:
                    self.journal.transition(State.STOPPED, trigger=self.stop_trigger(),
                                            message="stopped before the restart")
                    return 0
                trigger = "auto-restart"
                self.restarts += 1
                self.journal.update(restarts=self.restarts)
                continue

            # A failed start: exited before ready, not ready in time, or not startable.
            failures += 1
            exit_code = sig = None
            if child is not None:
                if outcome == _Outcome.TIMEOUT:
                    self.kill_tree(child, min(spec.stop_timeout, 1.0))
                    error = f"not ready within init_timeout {spec.init_timeout:g} s; killed"
                else:
                    exit_code, sig = child.exit_info()
                    self.cleanup_leftovers(child)
                    last = self.last_output_line()
                    error = f"exited before it was ready ({describe_exit(exit_code, sig)})"
                    if last:
                        error += f"; last output: {last}"
                self.collect_first_lines(final=True)
            assert error is not None
            give_up = failures >= spec.max_quick_failures
            delay = spec.backoff_delay(failures)
            suffix = "" if give_up else f"; retry {failures} in {delay:g} s"
            self.journal.transition(
                State.BACKOFF, trigger="keeper", message=error + suffix, exit_code=exit_code,
                sig=sig, expected=False, error=error,
            )
            if give_up:
                msg = f"gave up after {failures} failed starts in a row: {error}"
                self.journal.transition(State.FATAL, trigger="keeper", message=msg, error=msg)
                return 0
            self.sleep_or_stop(delay)
            if self.stop_requested:
                self.journal.transition(State.STOPPED, trigger=self.stop_trigger(),
                                        message="stopped during backoff", error=None)
                return 0
            trigger = "auto-restart"
            self.restarts += 1
            self.journal.update(restarts=self.restarts)

    def sleep_or_stop(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop_requested:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.pause(min(left, HOUSEKEEPING_INTERVAL))


def _group_members(pgid: int) -> Iterable[int]:
    """Pids whose process group is ``pgid`` (read from /proc; psutil has no such query)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid:
                yield int(entry.name)
        except (ProcessLookupError, PermissionError):
            continue


# --------------------------------------------------------------------------- entry point


def _setup_logging(spec: Spec | None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s keeper[{os.getpid()}] %(levelname)s %(message)s"))
    if spec is not None:
        redact = spec.redact

        class _Redact(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record.msg = redact(record.getMessage())
                record.args = ()
                return True

        handler.addFilter(_Redact())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _redirect_stdio(run_dir: Path) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    out = os.open(run_dir / KEEPER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)


def _daemonize() -> Callable[[bytes], None]:
    """Fork; the first process waits for the second's word, then exits with it.

    The first process is the one launch() started with Popen: it exits as soon as the
    keeper (the second) has its own session and lock, so launch() reaps it at once
    and no zombie stays with the caller, and the keeper is re-parented to init.
    Returns the function the keeper calls once with b"ok", b"busy" or b"error: ...".
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"ok"):
            os._exit(_RC_OK)
        if data.startswith(b"busy"):
            os._exit(_RC_BUSY)
        os._exit(_RC_ERROR)
    os.close(r)
    os.setsid()

    def report(word: bytes) -> None:
        nonlocal w
        if w >= 0:
            try:
                os.write(w, word)
            finally:
                os.close(w)
                w = -1

    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m portal.process.keeper", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--adopt", action="store_true", help="take over a child whose keeper died")
    parser.add_argument("--trigger", default="user", help="who asked for this start (recorded in events)")
    parser.add_argument("--foreground", action="store_true", help="no fork (debugging)")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    # First: everything the keeper and its child create is private (0600/0700).
    os.umask(0o077)

    def report(word: bytes) -> None:
        return None
    if not args.foreground:
        report = _daemonize()
        _redirect_stdio(run_dir)
    try:
        spec = read_spec(run_dir)
    except (OSError, ValueError) as exc:
        _setup_logging(None)
        log.error("cannot read %s: %s", run_dir / SPEC_FILE, exc)
        report(f"error: cannot read spec: {exc}".encode())
        return 2
    _setup_logging(spec)

    lock_fd = _try_lock(run_dir)
    if lock_fd is None:
        log.error("another keeper holds %s; exiting", run_dir / LOCK_FILE)
        report(b"busy")
        return 3
    try:
        keeper = Keeper(run_dir, spec, trigger=args.trigger)
        keeper.install_signals()
        mode = "adopt" if args.adopt else "launch"
        me = keeper.write_pid_file(mode)
        log.info("keeper %s started (%s) for %s", me.pid, mode, run_dir)
        journal = keeper.journal
        previous = child_identity(journal.status)
        alive = identity.is_alive(previous)

        if args.adopt:
            if not alive or not is_active(journal.state):
                _reconcile_locked(journal)
                journal.write_status()
                msg = f"nothing to adopt: process {previous.pid if previous else '-'} is not alive"
                log.error("%s", msg)
                report(f"error: {msg}".encode())
                return 5
            assert previous is not None
            started = float(journal.status.get("run_started_at") or time.time())
            child = _Child(previous, started, None, keeper.wake)
            keeper.child = child
            journal.update(adopted=True, error=None)
            if journal.state is State.STOPPING:
                report(b"ok")
                return keeper.stop(child, "keeper")
            if journal.state not in (State.STARTING, State.RUNNING):
                journal.transition(State.UNKNOWN, trigger="keeper", message="adopting a live process")
                journal.transition(State.STARTING, trigger="keeper", message="adopted")
            log.info("adopted pid %s (state %s)", previous.pid, journal.state.value)
            report(b"ok")
            return keeper.run(adopted=child)

        if alive and is_active(journal.state):
            msg = (f"process {previous.pid if previous else '-'} of this run dir is still alive without a "
                   f"keeper; adopt it or stop it first")
            log.error("%s", msg)
            report(f"error: {msg}".encode())
            return 5
        _reconcile_locked(journal)
        journal.transition(
            State.STARTING, trigger=args.trigger, message=spec.display_command(), error=None,
            pid=None, create_time=None, run_started_at=None, ready_at=None, time_to_ready=None,
            first_lines=[], adopted=False, restarts=0,
        )
        keeper.restarts = 0
        report(b"ok")
        return keeper.run()
    except Exception as exc:
        log.exception("keeper failed")
        report(f"error: {exc}".encode())
        with contextlib.suppress(Exception):
            # The child (if any) lives on and can be adopted or stopped; say so.
            keeper.journal.update(error=f"the keeper failed ({exc}); see {run_dir / KEEPER_LOG}")
        return 1
    finally:
        _unlock(lock_fd)


# --------------------------------------------------------------------------- public API


def _start_keeper(run_dir: Path, extra: list[str], timeout: float) -> KeeperInfo:
    mode = "adopt" if "--adopt" in extra else "launch"
    try:
        pass_env = read_spec(run_dir).pass_env
    except (OSError, ValueError):
        pass_env = []  # the keeper itself reports the unreadable spec
    out = os.open(run_dir / KEEPER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.process.keeper", str(run_dir), *extra],
            cwd=_PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            close_fds=True, umask=0o077,
            # Not the caller's environment: /proc/PID/environ of the keeper is readable by
            # the same user, and it must hold none of the portal's settings. Secret values
            # for the child come from spec.json (0600), never through the keeper's environ.
            env=inherited_env(dict(os.environ), pass_env),
        )
    finally:
        os.close(out)
    try:
        rc = proc.wait(timeout)  # the intermediate process: exits once the keeper is set up
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise LaunchError(f"the keeper did not start within {timeout:g} s; see {run_dir / KEEPER_LOG}") from None
    if rc == _RC_BUSY:
        raise KeeperBusy(f"a keeper is already running for {run_dir}; stop it first")
    if rc != _RC_OK:
        from portal.process.logtail import tail

        last = "; ".join(line for line in tail(run_dir / KEEPER_LOG, 3) if "ERROR" in line) or "no details"
        raise LaunchError(f"the keeper could not {mode} ({last}); see {run_dir / KEEPER_LOG}")
    ident = read_keeper_identity(run_dir)
    if ident is None:
        raise LaunchError(f"the keeper started but wrote no {PID_FILE}; see {run_dir / KEEPER_LOG}")
    return KeeperInfo(run_dir=run_dir, keeper=ident, mode=mode)


def _refuse_if_busy(run_dir: Path) -> None:
    fd = _lock_unless_keeper(run_dir)
    if fd is None:
        keeper = read_keeper_identity(run_dir)
        who = f" (pid {keeper.pid})" if keeper else ""
        raise KeeperBusy(f"a keeper{who} is already running for {run_dir}; stop it first")
    _unlock(fd)


def launch(spec: Spec, run_dir: Path | str, trigger: str = "user", timeout: float = 10.0) -> KeeperInfo:
    """Write ``spec`` to RUN_DIR and start a detached keeper that starts the process.

    Returns once the keeper runs and status.json says ``starting``; then use
    :func:`wait_for` with ``{"running", "fatal", "exited"}``. Raises KeeperBusy when a
    keeper already runs for RUN_DIR, AlreadyRunning when its process is alive without
    a keeper, LaunchError when the keeper could not start.
    """
    run_dir = Path(run_dir).resolve()
    spec.validate()
    _mkdir_private(run_dir)
    _refuse_if_busy(run_dir)
    status = read_status(run_dir)
    pid = child_identity(status)
    if status and is_active(status.get("state") or "stopped") and identity.is_alive(pid):
        assert pid is not None
        raise AlreadyRunning(
            f"{spec.name}: process {pid.pid} is still running without a keeper; adopt it or stop it first")
    write_spec(spec, run_dir)
    try:
        (run_dir / STOP_REQUEST_FILE).unlink()
    except FileNotFoundError:
        pass
    return _start_keeper(run_dir, ["--trigger", trigger], timeout)


def adopt(run_dir: Path | str, timeout: float = 10.0) -> KeeperInfo:
    """Start a keeper that takes over the live process of RUN_DIR whose keeper died."""
    run_dir = Path(run_dir).resolve()
    _refuse_if_busy(run_dir)
    return _start_keeper(run_dir, ["--adopt"], timeout)


def wait_for(run_dir: Path | str, states: Iterable[str], timeout: float, interval: float = 0.015) -> dict[str, Any]:
    """Poll status.json until its state is one of ``states``; returns the last status.

    Also returns early once no keeper runs and the state can no longer change by
    itself. The caller checks ``result["state"]``; ``{}`` means no status at all.
    """
    wanted = {str(State(s).value) for s in states}
    deadline = time.monotonic() + timeout
    next_keeper_check = time.monotonic() + 0.2
    status: dict[str, Any] = {}
    while True:
        status = read_status(run_dir) or {}
        if status.get("state") in wanted:
            return status
        now = time.monotonic()
        if now >= deadline:
            return status
        if now >= next_keeper_check:
            next_keeper_check = now + 0.2
            if not keeper_alive(run_dir):
                status = read_status(run_dir) or {}  # the keeper may have written last words
                if status.get("state") in wanted or not is_active(status.get("state") or "stopped"):
                    return status
        time.sleep(interval)


def request_stop(run_dir: Path | str, timeout: float | None = None, trigger: str = "user") -> bool:
    """Stop the process of RUN_DIR and everything it started.

    With a live keeper: record who asks, send SIGTERM to the keeper (only if the pid
    still is that keeper) and wait. Without one: stop a still-living process directly,
    with the same SIGTERM / stop_timeout / SIGKILL rule, recording the transitions.
    Waits up to ``timeout`` seconds (None: the spec's stop_timeout plus 5 s). Returns
    True when, at the end, nothing runs and the state is settled.
    """
    run_dir = Path(run_dir).resolve()
    try:
        spec = read_spec(run_dir)
    except (OSError, ValueError):
        return read_status(run_dir) is None  # never launched: nothing to stop
    if timeout is None:
        timeout = spec.stop_timeout + 5.0
    deadline = time.monotonic() + timeout
    keeper = read_keeper_identity(run_dir)
    if identity.is_alive(keeper):
        _write_atomic(run_dir / STOP_REQUEST_FILE, json.dumps({"trigger": trigger, "time": time.time()}))
        if identity.signal_if_ours(keeper, signal.SIGTERM):
            while time.monotonic() < deadline:
                if not identity.is_alive(keeper):
                    break
                time.sleep(0.01)
            status = read_status(run_dir) or {}
            return not identity.is_alive(keeper) and status.get("state") != State.STOPPING.value
    fd = _lock_unless_keeper(run_dir)
    if fd is None:  # a keeper appeared meanwhile; it will see our stop request
        status = wait_for(run_dir, {"stopped", "exited", "fatal"}, max(0.0, deadline - time.monotonic()))
        return status.get("state") in ("stopped", "exited", "fatal")
    try:
        journal = Journal(run_dir, spec)
        child = child_identity(journal.status)
        if identity.is_alive(child) and is_active(journal.state):
            assert child is not None
            if journal.state is not State.STOPPING:
                journal.transition(State.STOPPING, trigger=trigger,
                                   message="no keeper: stopping the process directly")
            ok = identity.terminate_tree(child, spec.stop_timeout, pgid=child.pid)
            journal.transition(State.STOPPED, trigger=trigger, expected=True,
                               message="stopped without a keeper (exit status unknown)",
                               error=None if ok else "some processes survived SIGKILL")
            return ok
        _reconcile_locked(journal, trigger="reconcile")
        if journal.state in (State.EXITED, State.FATAL, State.UNKNOWN):
            journal.transition(State.STOPPED, trigger=trigger, message="marked stopped", error=None)
        return True
    finally:
        _unlock(fd)


if __name__ == "__main__":
    sys.exit(main())
