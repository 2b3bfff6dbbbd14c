"""``make run``: start everything the portal needs and keep it in the foreground.

An embedded Redis (unless REDIS_URL is set), a Celery worker with beat, and the
web application under gunicorn. Ctrl-C or SIGTERM stops them in reverse order
(web, worker, Redis), each with SIGTERM and then SIGKILL after a grace period,
and leaves no process of theirs behind. Gateways started from the portal are
not the launcher's: their keepers are detached on purpose and keep running; the
next start re-adopts them.

Written by hand rather than with a Procfile runner because the start order
matters (Redis must answer before the worker starts), the children must die
with the launcher even when it is killed (PR_SET_PDEATHSIG), and no extra
dependency is needed for ~150 lines.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from portal import paths, redis_server

GRACE_SECONDS = 10
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the launcher dies, however it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the signal handlers below still stop the children


def _say(text: str) -> None:
    print(f"[portal] {text}", flush=True)


class Launcher:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            env=env,
            # Own session: Ctrl-C reaches only the launcher, which then stops
            # the children in order instead of all at once.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.children.append((name, process))

    def stop_all(self) -> None:
        self.stopping = True
        for name, process in reversed(self.children):
            self._stop(name, process)

    def _stop(self, name: str, process: subprocess.Popen) -> None:
        if process.poll() is not None:
            return
        # Collect the whole tree first: once the parent is gone its children
        # are re-parented and no longer findable through it.
        tree = _descendants(process.pid)
        _say(f"stopping {name} (pid {process.pid})")
        process.terminate()
        try:
            process.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _say(f"{name} did not stop within {GRACE_SECONDS} s; killing it")
            process.kill()
            process.wait()
        for child in tree:
            try:
                if child.is_running():
                    child.kill()
            except Exception:
                pass

    def run(self) -> int:
        host = os.environ.get("PORTAL_HOST", "127.0.0.1")
        port = os.environ.get("PORTAL_PORT", "8000")
        venv_bin = Path(sys.executable).parent
        # Before the first write, and inherited by every child (Redis, worker, web server).
        paths.private_umask()
        for line in paths.fix_modes():
            _say(f"warning: {line}")
        paths.ensure_dirs()
        env = dict(os.environ)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

        if not os.environ.get("REDIS_URL"):
            _say(f"starting the embedded Redis ({paths.REDIS_SOCKET})")
            redis_proc = redis_server.start(
                paths.REDIS_DIR, log_file=paths.LOG_DIR / "redis.log", preexec_fn=_die_with_parent
            )
            self.children.append(("redis", redis_proc))
        else:
            _say("using the Redis at REDIS_URL")

        host_name = paths.this_host()
        from portal.queues import worker_queues

        self.spawn(
            "celery worker",
            [
                str(venv_bin / "celery"), "-A", "portal.celery", "worker",
                "--beat", "--schedule", str(paths.VAR_DIR / "celerybeat-schedule"),
                "--hostname", f"portal@{host_name}",
                "--queues", ",".join(worker_queues(host_name)),
                "--concurrency", os.environ.get("PORTAL_WORKER_CONCURRENCY", "2"),
                "--loglevel", "INFO",
            ],
            env,
        )
        self.spawn(
            "web server",
            [
                str(venv_bin / "gunicorn"), "portal.wsgi:application",
                "--bind", f"{host}:{port}",
                "--worker-class", "gthread",
                "--workers", os.environ.get("PORTAL_WEB_WORKERS", "2"),
                "--threads", "4",
                "--access-logfile", str(paths.LOG_DIR / "access.log"),
                "--error-logfile", "-",
                "--graceful-timeout", "5",
            ],
            env,
        )
        _say(f"the portal is at http://{host}:{port}/  (Ctrl-C stops it)")
        password_file = paths.VAR_DIR / "admin-password.txt"
        if password_file.exists():
            _say(f"log in as admin; the generated password is in {password_file}")

        while not self.stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    _say(f"{name} exited with code {process.returncode}; stopping the rest")
                    self.stop_all()
                    return 1
            time.sleep(0.5)
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stopping:
            return
        _say(f"{signal.Signals(signum).name} received; stopping")
        self.stop_all()
        _say("stopped; gateways started from the portal keep running (stop them in the portal)")
        sys.exit(0)


def _descendants(pid: int) -> list:  # type: ignore[type-arg]
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def main() -> int:
    return Launcher().run()


if __name__ == "__main__":
    sys.exit(main())
