"""`make run`'s launcher with real processes: it serves, supervises its parts, and leaves nothing behind."""

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from conftest import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str) -> int | None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    try:
        return urllib.request.build_opener(NoRedirect).open(url, timeout=2).status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


@pytest.fixture
def portal_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "PORTAL_DATABASE_URL"}
    }
    env.update({
        "PORTAL_VAR_DIR": str(tmp_path / "var"), "PORTAL_PORT": str(free_port()),
        "PORTAL_ADMIN_PASSWORD": "launcher-test-password", "PORTAL_WORKER_CONCURRENCY": "1",
        "PORTAL_WEB_WORKERS": "1",
    })
    return env


class Running:
    """A launcher started as `make run` would be, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = env["PORTAL_PORT"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portal.launcher"], env=env, cwd=settings.BASE_DIR,
            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_serving(self) -> None:
        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the launcher exited early:\n{self.output()[-3000:]}")
            return http_status(f"http://127.0.0.1:{self.port}/login/") == 200

        wait_until(up, timeout=120, interval=0.3, message="the login page did not answer")

    def part(self, word: str) -> psutil.Process | None:
        for child in psutil.Process(self.process.pid).children():
            try:
                if word in " ".join(child.cmdline()):
                    return child
            except psutil.Error:
                pass
        return None

    def sessions(self) -> set[int]:
        return {os.getsid(c.pid) for c in psutil.Process(self.process.pid).children()}

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # what a terminal does to its foreground group
        return self.process.wait(60)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def alive_in(sessions: set[int]) -> list[str]:
    """Processes (not zombies) still in any of these sessions."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if os.getsid(process.pid) in sessions and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(f"{process.pid}: {' '.join(process.info['cmdline'] or [])[:100]}")
        except (OSError, psutil.Error):
            pass
    return found


def test_it_serves_the_portal_and_ctrl_c_leaves_no_process_behind(portal_env, tmp_path):
    # A beat left behind by an earlier run from this folder must not make a second scheduler.
    schedule = Path(portal_env["PORTAL_VAR_DIR"]) / "celerybeat-schedule"
    stale_beat = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "--schedule", str(schedule)],
        start_new_session=True,
    )
    launcher = Running(portal_env, tmp_path / "launcher.log")
    try:
        launcher.wait_serving()
        assert stale_beat.wait(5) == -signal.SIGKILL
        assert f"pid {stale_beat.pid}, left running by an earlier run" in launcher.output()
        assert http_status(f"http://127.0.0.1:{launcher.port}/") == 302
        tree = psutil.Process(launcher.process.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "redis-server" in names and "celery" in names and "gunicorn" in names
        sessions = launcher.sessions()
        assert (Path(portal_env["PORTAL_VAR_DIR"]) / "redis" / "redis.sock").exists()
        # gunicorn's control socket is this portal's, not the user's shared ~/.gunicorn one.
        assert (Path(portal_env["PORTAL_VAR_DIR"]) / "run" / "gunicorn.ctl").exists()

        assert launcher.ctrl_c() == 0
        output = launcher.output()
        assert "stopping web server" in output and "stopping redis" in output
        assert [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        assert alive_in(sessions) == []
    finally:
        launcher.kill()
        stale_beat.kill()


def test_a_worker_killed_with_sigkill_takes_its_beat_along_and_is_restarted(portal_env, tmp_path):
    launcher = Running(portal_env, tmp_path / "launcher.log")
    try:
        launcher.wait_serving()
        worker = wait_until(lambda: launcher.part("celery"), timeout=30)
        # The worker's own processes: its pool and the embedded beat.
        helpers = wait_until(lambda: worker.children(recursive=True), timeout=30)
        old_session = os.getsid(worker.pid)

        worker.kill()

        new = wait_until(lambda: (p := launcher.part("celery")) and p.pid != worker.pid and p,
                         timeout=30, message=f"no new worker:\n{launcher.output()[-2000:]}")
        wait_until(lambda: not alive_in({old_session}), timeout=10,
                   message=f"the dead worker's processes survived: {alive_in({old_session})}")
        assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in helpers)
        # One scheduler: every process whose command line names the schedule is the new worker's.
        wait_until(lambda: new.children(recursive=True), timeout=30)
        schedule = str(Path(portal_env["PORTAL_VAR_DIR"]) / "celerybeat-schedule")
        mine = {new.pid} | {p.pid for p in new.children(recursive=True)}
        others = [p.pid for p in psutil.process_iter(["cmdline"])
                  if schedule in (p.info["cmdline"] or []) and p.pid not in mine]
        assert others == []
        output = launcher.output()
        assert f"celery worker (pid {worker.pid}) was killed by SIGKILL" in output
        assert "restarting celery worker" in output
        assert http_status(f"http://127.0.0.1:{launcher.port}/login/") == 200

        sessions = launcher.sessions()
        assert launcher.ctrl_c() == 0
        assert alive_in(sessions | {old_session}) == []
    finally:
        launcher.kill()


def test_a_part_that_keeps_crashing_makes_it_give_up_and_stop_the_rest(portal_env, tmp_path):
    launcher = Running(portal_env, tmp_path / "launcher.log")
    try:
        launcher.wait_serving()
        sessions = launcher.sessions()
        killed: set[int] = set()

        def kill_each_new_web_server() -> bool:
            if launcher.process.poll() is not None:
                return True
            web = launcher.part("gunicorn")
            if web and web.pid not in killed:
                sessions.add(os.getsid(web.pid))
                killed.add(web.pid)
                web.kill()
            return False

        wait_until(kill_each_new_web_server, timeout=90, interval=0.1,
                   message=f"the launcher did not give up:\n{launcher.output()[-3000:]}")
        assert launcher.process.returncode == 1
        output = launcher.output()
        assert len(killed) == 6
        assert "web server crashed 6 times in a row; giving up: stopping the portal" in output
        assert "stopping celery worker" in output and "stopping redis" in output
        assert alive_in(sessions) == []
    finally:
        launcher.kill()


def test_a_second_launcher_on_the_same_folder_says_so_and_starts_nothing(portal_env, tmp_path):
    first = Running(portal_env, tmp_path / "first.log")
    try:
        first.wait_serving()
        second_env = dict(portal_env, PORTAL_PORT=str(free_port()))
        second = subprocess.run(
            [sys.executable, "-m", "portal.launcher"], env=second_env, cwd=settings.BASE_DIR,
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert second.returncode == 1
        assert f"the portal is already running from {portal_env['PORTAL_VAR_DIR']}" in second.stdout
        assert f"pid {first.process.pid}, serving http://127.0.0.1:{first.port}/" in second.stdout
        assert "starting" not in second.stdout
        assert http_status(f"http://127.0.0.1:{second_env['PORTAL_PORT']}/login/") is None
        assert http_status(f"http://127.0.0.1:{first.port}/login/") == 200
        assert first.ctrl_c() == 0
    finally:
        first.kill()


def test_a_second_redis_on_the_same_folder_is_refused(portal_env):
    from portal import redis_server

    redis_dir = Path(portal_env["PORTAL_VAR_DIR"]) / "redis"
    first = redis_server.start(redis_dir)
    try:
        with pytest.raises(RuntimeError, match="another portal seems to be running"):
            redis_server.start(redis_dir)
    finally:
        first.terminate()
        first.wait(10)
