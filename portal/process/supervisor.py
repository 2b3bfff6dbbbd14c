"""The supervising loop: start the process, wait until it is ready, watch it, apply the
restart policy, stop it and everything it started. Runs inside the keeper process
(see :mod:`portal.process.daemon`); the lifecycle is drawn in :mod:`portal.process.keeper`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from portal.process import identity, probes, sandbox
from portal.process.child import Child, describe_exit, group_members
from portal.process.identity import ProcessIdentity
from portal.process.journal import Journal
from portal.process.listener import Listener
from portal.process.logtail import open_for_append, open_regular, rotate_copytruncate, within
from portal.process.reload import Watcher
from portal.process.rundir import PID_FILE, STOP_REQUEST_FILE, log_file_of, read_json, write_atomic
from portal.process.spec import Spec
from portal.process.states import State

PROBE_INTERVAL = 0.02  # between readiness probes while starting
# ... once the server answered, but with an error (HTTP 5xx): it is up but failing, and each probe
# is a traceback in its log (37 a second at PROBE_INTERVAL: megabytes in one failed start).
FAILING_PROBE_INTERVAL = 0.5
DEFAULT_PROBE_TIMEOUT = 0.25  # one probe attempt, unless the probe says ("timeout")
HOUSEKEEPING_INTERVAL = 0.5  # log rotation, descendant snapshot, first lines
# While nothing changes (the same descendants, a log that does not grow), the housekeeping's
# interval doubles up to this: an idle keeper wakes every few seconds, not twice a second (each
# snapshot of descendants reads the host's whole process table). The first change brings it
# back to HOUSEKEEPING_INTERVAL. Nothing else needs a timer: the child's exit, a stop (SIGTERM)
# and an adopted process's exit (its pidfd) wake the keeper at once.
IDLE_HOUSEKEEPING_INTERVAL = 5.0
ADOPT_POLL_INTERVAL = 0.05  # an adopted process is not our child: polled where no pidfd can watch it
FIRST_LINES = 20
FIRST_LINES_WINDOW = 30.0  # stop looking for first lines after this long

log = logging.getLogger("portal.process.keeper")


class _Outcome:
    READY = "ready"
    EXITED = "exited"
    TIMEOUT = "timeout"
    STOP = "stop"
    RELOAD = "reload"  # a watched file changed and the process must be restarted


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
        self.child: Child | None = None
        self.known_descendants: dict[int, Any] = {}
        self.run_offset = 0
        self.first_lines_done = False
        self.next_housekeeping = 0.0
        self.housekeeping_interval = HOUSEKEEPING_INTERVAL
        self.housekept: tuple[frozenset[int], int] | None = None  # descendants and log size last seen
        self.restarts = int(self.journal.status.get("restarts") or 0)
        self.probe = spec.probe  # with its host resolved at each spawn
        self.watcher = Watcher(spec.reload) if spec.reload else None
        self.reload_file: str | None = None
        self.sandbox_noted = False
        # What the readiness probe last got from a server that is up but not ready (HTTP 5xx).
        self.probe_answer: str | None = None
        # The socket the keeper binds for the process and keeps across its restarts (or None).
        self.listener = Listener(spec.listen) if spec.listen else None

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
        """Sleep up to ``seconds``, returning at once on a signal, a child's exit or (through its
        pidfd) an adopted process's exit."""
        if seconds > 0 and not self.stop_requested:
            child = self.child
            pidfd = child.pidfd if child is not None and not child.exited.is_set() else None
            ready, _, _ = select.select([self.wake_r] if pidfd is None else [self.wake_r, pidfd], [], [], seconds)
            if pidfd is not None and child is not None and pidfd in ready:
                child.has_exited()  # closes the pidfd, which would stay readable: no busy loop
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def stop_trigger(self) -> str:
        """Who asked for the stop that our SIGTERM means (written by request_stop)."""
        path = self.run_dir / STOP_REQUEST_FILE
        data = read_json(path) or {}
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return str(data.get("trigger") or "signal")

    def write_pid_file(self, mode: str) -> ProcessIdentity:
        me = identity.identity_of(os.getpid())
        assert me is not None
        write_atomic(self.run_dir / PID_FILE, json.dumps(
            {**me.to_dict(), "started_at": time.time(), "mode": mode}), 0o600)
        self.journal.status.update(keeper_pid=me.pid, keeper_create_time=me.create_time)
        return me

    # -- housekeeping --------------------------------------------------------------

    def housekeeping(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_housekeeping:
            return
        child = self.child
        descendants: frozenset[int] = frozenset()
        if child is not None and child.proc is not None:
            # Gone meanwhile: the exit path handles it.
            with contextlib.suppress(psutil.Error):
                found = child.proc.children(recursive=True)
                for proc in found:
                    self.known_descendants[proc.pid] = proc
                descendants = frozenset(proc.pid for proc in found)
        try:
            size = os.stat(self.log_path).st_size
        except OSError:
            size = -1
        seen = (descendants, size)
        # Busy (a new descendant, new output): every HOUSEKEEPING_INTERVAL; idle: less and less often.
        if seen != self.housekept:
            self.housekeeping_interval = HOUSEKEEPING_INTERVAL
        else:
            self.housekeeping_interval = min(self.housekeeping_interval * 2, IDLE_HOUSEKEEPING_INTERVAL)
        self.housekept = seen
        self.next_housekeeping = now + self.housekeeping_interval
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

    def account_said(self) -> str:
        """Who the process runs as, for the startup details."""
        from portal.process.accounts import Account, portal_user

        account = Account.from_dict(self.spec.account)
        if account is not None:
            return account.describe()
        said = f"the portal's own user ({portal_user()}): the portal cannot switch users"
        if self.spec.sandbox is None:
            return said
        why = sandbox.userns_unavailable()
        return f"{said}; var/ hidden from it by a private mount namespace too" if why is None else \
            f"{said}; var/ not hidden by a mount namespace ({why}): it may chmod the portal's files"

    def account_kwargs(self) -> dict[str, Any]:
        from portal.process.accounts import Account

        account = Account.from_dict(self.spec.account)
        return account.popen_kwargs() if account is not None else {}

    def child_env(self) -> dict[str, str]:
        # The keeper's environment is already allowlisted (see _start_keeper); filter
        # again so that a keeper started by hand passes on no more.
        return self.spec.child_env(dict(os.environ))

    def resolve_probe(self) -> str | None:
        """Make the probe ready for this start; an error message if it cannot be.

        Its host name is resolved once per start, with a deadline: probing by name would
        resolve again on every attempt, and a name service that does not answer would
        hold each attempt far beyond the initialization timeout. An import probe is
        imported now, so that a wrong path fails the start with a message saying so.
        """
        probe = self.spec.probe
        self.probe = probe
        path = probes.import_path(probe)
        if path is not None:
            try:
                probes.load_import(path)
            except ValueError as exc:
                return f"{exc}; fix the probe's path"
        if probes.tcp_port(probe) is None:
            return None
        assert probe is not None
        host = probes.probe_host(probe.get("host"))
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
        if probe is not None and probe.get("kind") == "unix" and probes.unix_probe(str(probe["socket"]), 0.2):
            return (f"another process already listens on {probe['socket']}: stop it, or have this program "
                    "listen on another socket")
        port = probes.tcp_port(probe)
        if probe is None or port is None or not probes.tcp_probe(probe.get("host"), port, 0.2):
            return None
        from portal.process.checks import port_holder  # lazily: only on this error path

        host = probe.get("host") or "127.0.0.1"
        holder = port_holder(host, port)
        who = f"by pid {holder[0]} ({holder[1]})" if holder and holder[0] else "(held by a process we cannot see)"
        return f"port {port} on {host} is already in use {who}; stop that process or choose another port"

    def stale_socket_error(self) -> str | None:
        """A unix socket left by a killed run is removed; one that a live server holds is an error."""
        probe = self.probe
        if self.listener is not None:
            return self.listener.ensure()  # clears a stale file, keeps our own socket
        if not probe or probe.get("kind") != "unix-http":
            return None
        return probes.clear_stale_socket(str(probe["socket"]))

    def spawn(self) -> str | None:
        """Start the child; returns an error message when it could not be started."""
        busy = self.resolve_probe() or self.port_in_use_error() or self.stale_socket_error()
        if busy:
            return busy
        confined, said, refused = sandbox.decide(self.spec.sandbox)
        self.journal.update(sandbox=said, account=self.account_said())
        if not confined and not self.sandbox_noted and self.spec.sandbox is not None:
            self.sandbox_noted = True  # once per keeper, not at each restart
            self.journal.note("sandbox", trigger="keeper", message=said, level="warning")
        if refused:
            return refused
        # The keeper has threads (the child's wait thread): no preexec_fn, an exec wrapper.
        argv = self.listener.argv(self.spec.argv) if self.listener is not None else self.spec.argv
        argv = sandbox.wrap(argv, self.spec.sandbox) if confined else argv  # type: ignore[arg-type]
        pass_fds = (self.listener.fileno(),) if self.listener is not None else ()
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
                argv,
                cwd=self.spec.cwd or self.run_dir,
                env=self.child_env(),
                stdin=subprocess.DEVNULL,
                stdout=fd,  # straight to the file: the child never blocks on a pipe
                stderr=subprocess.STDOUT,
                close_fds=True,
                pass_fds=pass_fds,  # the listening socket, at the number argv names
                start_new_session=True,  # own group: SIGTERM/SIGKILL reach its whole tree
                umask=0o077,
                # Its own user (portal.process.accounts): set by CPython between fork and exec.
                **self.account_kwargs(),
            )
        except OSError as exc:
            return f"cannot start {self.spec.argv[0]}: {exc.strerror or exc}"
        finally:
            os.close(fd)
        started_at = time.time()
        # psutil still sees the process as a zombie until the wait thread reaps it.
        ident = identity.identity_of(popen.pid) or ProcessIdentity(popen.pid, started_at)
        self.child = Child(ident, started_at, popen, self.wake)
        self.known_descendants = {}
        self.first_lines_done = False
        self.journal.update(
            pid=ident.pid, create_time=ident.create_time, run_started_at=started_at,
            ready_at=None, time_to_ready=None, first_lines=[], adopted=False,
        )
        log.info("started pid %s: %s", ident.pid, self.spec.display_command())
        return None

    def wait_ready(self, child: Child) -> str:
        spec = self.spec
        start = time.monotonic() - max(0.0, time.time() - child.started_at)
        deadline = start + spec.init_timeout
        no_probe_ready = start + min(spec.quick_secs, spec.init_timeout)
        self.probe_answer = None
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
            else:
                timeout = max(0.05, min(attempt, deadline - now))
                ready, self.probe_answer = probes.probe_answer(self.probe, timeout=timeout)
                if ready:
                    return _Outcome.EXITED if child.has_exited() else _Outcome.READY
            if time.monotonic() >= deadline:
                return _Outcome.TIMEOUT
            self.housekeeping()
            self.pause(FAILING_PROBE_INTERVAL if self.probe_answer else PROBE_INTERVAL)

    def wait_exit(self, child: Child) -> str:
        # Only an adopted process without a pidfd must be polled: otherwise its exit wakes the keeper.
        polled = child.adopted and child.pidfd is None
        while True:
            if self.stop_requested:
                return _Outcome.STOP
            if child.has_exited():
                return _Outcome.EXITED
            self.housekeeping()
            interval = max(0.0, self.next_housekeeping - time.monotonic())
            if polled:
                interval = min(interval, ADOPT_POLL_INTERVAL)
            watcher = self.watcher
            if watcher is None:
                self.pause(interval)
                continue
            changed = watcher.poll()
            if changed is not None:
                if watcher.signal is None:
                    self.reload_file = changed
                    return _Outcome.RELOAD
                self.reload_by_signal(child, changed, watcher.signal)
            self.pause(min(interval, watcher.next_wakeup()))

    # -- reloads (debug mode) --------------------------------------------------------------

    def reload_by_signal(self, child: Child, path: str, signum: int) -> None:
        """The engine reloads itself gracefully on ``signum`` (gunicorn's HUP: new workers, old ones retired)."""
        name = signal.Signals(signum).name
        sent = identity.signal_if_ours(child.ident, signum)
        message = (f"{path} changed: {name} to pid {child.ident.pid} (graceful reload)" if sent
                   else f"{path} changed, but pid {child.ident.pid} is gone: no reload")
        self.journal.note("reload", trigger="reload", message=message, file=path, how=name)

    def reload_by_restart(self, child: Child) -> tuple[Child, str]:
        """Restart the process for a changed file (an engine without a graceful reload).

        The state stays running: a reload is no failure. Returns the process now kept and
        what became of it, as :meth:`wait_exit` would (a new process that does not come up
        is an exit from running, and the restart policy applies).
        """
        path = self.reload_file
        self.journal.note("reload", trigger="reload", file=path, how="restart",
                          message=f"{path} changed: restarting pid {child.ident.pid} (no graceful reload)")
        self.kill_tree(child, self.spec.stop_timeout)
        self.cleanup_leftovers(child)
        error = self.spawn()
        new = self.child
        if error is not None or new is None or new is child:
            self.journal.update(error=f"the reload could not start the process: {error}")
            return child, _Outcome.EXITED
        outcome = self.wait_ready(new)
        if outcome == _Outcome.READY:
            ready_at = time.time()
            self.journal.update(ready_at=ready_at, time_to_ready=round(ready_at - new.started_at, 4), error=None)
            return new, self.wait_exit(new)
        if outcome == _Outcome.TIMEOUT:
            self.kill_tree(new, min(self.spec.stop_timeout, 1.0))
            return new, _Outcome.EXITED
        return new, outcome

    # -- stopping ----------------------------------------------------------------------

    def kill_tree(self, child: Child, timeout: float) -> None:
        """The stop signal (SIGTERM unless the spec says) to the group and every known descendant,
        ``timeout`` grace, then SIGKILL."""
        self.housekeeping(force=True)  # a fresh snapshot of descendants before signalling
        extra = [p for p in self.known_descendants.values() if identity.proc_alive(p)]
        ok = identity.terminate_tree(
            child.ident, timeout, pgid=child.ident.pid, extra=extra, root_gone=child.has_exited,
            sig=self.spec.stop_signum,
        )
        if child.popen is not None:
            child.exited.wait(2.0)
        if not ok:
            log.warning("some processes of pid %s's tree survived SIGKILL", child.ident.pid)

    def cleanup_leftovers(self, child: Child) -> None:
        """After the child's own exit, nothing it started may live on (a grandchild
        holding the port would make the restart fail)."""
        extra = [p for p in self.known_descendants.values() if identity.proc_alive(p)]
        group_alive = any(True for _ in group_members(child.ident.pid))
        if extra or group_alive:
            log.info("stopping %d leftover processes of pid %s", len(extra), child.ident.pid)
            identity.terminate_tree(None, min(self.spec.stop_timeout, 1.0), pgid=child.ident.pid, extra=extra,
                                    sig=self.spec.stop_signum)
        self.known_descendants = {}

    def stop(self, child: Child | None, trigger: str) -> int:
        if self.journal.state not in (State.STARTING, State.RUNNING, State.STOPPING):
            # backoff / exited: nothing runs; supervisor goes straight to stopped.
            self.journal.transition(State.STOPPED, trigger=trigger, message="stopped; no restart", error=None)
            return 0
        if self.journal.state is not State.STOPPING:
            pgid = child.ident.pid if child else "-"
            self.journal.transition(
                State.STOPPING, trigger=trigger,
                message=f"SIG{self.spec.stop_signal} to process group {pgid}; "
                        f"SIGKILL after {self.spec.stop_timeout:g} s",
            )
        if child is None:
            self.journal.transition(State.STOPPED, trigger=trigger, message="stopped before it started",
                                    error=None)
            return 0
        self.kill_tree(child, self.spec.stop_timeout)
        exit_code, sig = child.exit_info()
        if sig == "SIGKILL":
            message = f"did not stop within {self.spec.stop_timeout:g} s of SIG{self.spec.stop_signal}; killed"
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

    def run(self, adopted: Child | None = None) -> int:
        """:meth:`keep`, then close the socket the keeper bound (its file goes with it)."""
        try:
            return self.keep(adopted)
        finally:
            if self.listener is not None:
                self.listener.close()

    def keep(self, adopted: Child | None = None) -> int:
        """Keep the process until it is stopped, gives up (fatal) or exits for good.

        Without ``adopted``, the journal is already in state starting.
        """
        spec = self.spec
        failures = 0
        trigger = self.trigger
        first = adopted is None  # the first STARTING was recorded before launch() returned
        while True:
            if adopted is not None:
                child: Child | None = adopted
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
                while outcome == _Outcome.RELOAD:
                    child, outcome = self.reload_by_restart(child)
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
                # In debug mode a broken save is not the end: the failed starts that follow
                # wait for the next change of the code (below) instead of giving up.
                give_up = restart and failures >= spec.max_quick_failures and self.watcher is None
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
                if not self.wait_to_restart(delay, "stopped before the restart"):
                    return 0
                trigger = "auto-restart"
                continue

            # A failed start: exited before ready, not ready in time, or not startable.
            failures += 1
            exit_code = sig = None
            if child is not None:
                if outcome == _Outcome.TIMEOUT:
                    self.kill_tree(child, min(spec.stop_timeout, 1.0))
                    answer = f" ({self.probe_answer}: its log says why)" if self.probe_answer else ""
                    error = f"not ready within init_timeout {spec.init_timeout:g} s{answer}; killed"
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
            if give_up and self.watcher is not None:
                suffix = f"; {failures} failed starts in a row: waiting for a change of the code to start again"
            self.journal.transition(
                State.BACKOFF, trigger="keeper", message=error + suffix, exit_code=exit_code,
                sig=sig, expected=False, error=error,
            )
            if give_up and self.watcher is not None:
                changed = self.wait_for_change()
                if changed is None:
                    self.journal.transition(State.STOPPED, trigger=self.stop_trigger(),
                                            message="stopped while waiting for a change of the code", error=None)
                    return 0
                self.journal.note("reload", trigger="reload", file=changed, how="start",
                                  message=f"{changed} changed: starting again")
                failures = 0
                trigger = "reload"
                continue
            if give_up:
                msg = f"gave up after {failures} failed starts in a row: {error}"
                self.journal.transition(State.FATAL, trigger="keeper", message=msg, error=msg)
                return 0
            if not self.wait_to_restart(delay, "stopped during backoff", error=None):
                return 0
            trigger = "auto-restart"

    def wait_for_change(self) -> str | None:
        """Debug mode, after failed starts: the file whose change is worth a new start; None on a stop."""
        watcher = self.watcher
        assert watcher is not None
        while not self.stop_requested:
            changed = watcher.poll()
            if changed is not None:
                return changed
            self.pause(min(HOUSEKEEPING_INTERVAL, watcher.next_wakeup()))
        return None

    def wait_to_restart(self, delay: float, stopped: str, **fields: Any) -> bool:
        """Wait ``delay`` seconds before the next start and count the restart.

        False when a stop came meanwhile: the state is then stopped (message ``stopped``,
        ``fields`` as for Journal.transition) and nothing starts again.
        """
        self.sleep_or_stop(delay)
        if self.stop_requested:
            self.journal.transition(State.STOPPED, trigger=self.stop_trigger(), message=stopped, **fields)
            return False
        self.restarts += 1
        self.journal.update(restarts=self.restarts)
        return True

    def sleep_or_stop(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop_requested:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.pause(min(left, HOUSEKEEPING_INTERVAL))
