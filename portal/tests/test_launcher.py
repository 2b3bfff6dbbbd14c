"""`make run`'s launcher: starts Redis, a worker and the web server; SIGTERM leaves nothing behind."""

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

from conftest import wait_until, worker_database_url


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
def portal_env(tmp_path: Path, django_db_setup) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {
        k: v for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "PORTAL_DATABASE_URL"}
    }
    env.update({"PORTAL_VAR_DIR": str(tmp_path / "var"), "PORTAL_PORT": str(free_port())})
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        # Like `make run` with PORTAL_DATABASE_URL set: the launcher opens the configured server
        # (here the suite's test database). On SQLite it keeps its own file in its own var/, as
        # `make run` does; the suite's SQLite file is not for a second portal to share.
        env["PORTAL_DATABASE_URL"] = worker_database_url()
    for command in (["migrate", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run([sys.executable, "manage.py", *command], env=env, cwd=settings.BASE_DIR, check=True)
    return env


def test_it_serves_the_portal_and_sigterm_leaves_no_process_behind(portal_env):
    port = portal_env["PORTAL_PORT"]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "portal.launcher"], env=portal_env, cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until(lambda: http_status(f"http://127.0.0.1:{port}/login/") == 200, timeout=60, interval=0.2)
        assert http_status(f"http://127.0.0.1:{port}/") == 302
        tree = psutil.Process(launcher.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "redis-server" in names and "celery" in names and "gunicorn" in names
        sock = Path(portal_env["PORTAL_VAR_DIR"]) / "redis" / "redis.sock"
        assert sock.exists()

        launcher.send_signal(signal.SIGTERM)
        output, _ = launcher.communicate(timeout=60)
        assert launcher.returncode == 0
        assert "stopping web server" in output and "stopping redis" in output
        survivors = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert survivors == []
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


def test_a_second_launcher_on_the_same_folder_is_refused(portal_env):
    from portal import redis_server

    redis_dir = Path(portal_env["PORTAL_VAR_DIR"]) / "redis"
    first = redis_server.start(redis_dir)
    try:
        with pytest.raises(RuntimeError, match="another portal seems to be running"):
            redis_server.start(redis_dir)
    finally:
        first.terminate()
        first.wait(10)
