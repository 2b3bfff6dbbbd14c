"""The embedded Redis requires a password that only the portal knows.

The socket's 0700 mode keeps other users out, but the gateways and web applications
the portal runs as its own user can reach it, and a sandbox cannot hide a unix socket
from connect(). The suite's own Redis is started as the launcher starts it
(conftest.redis_service), so these tests and every test that goes through the real
worker use the password.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import redis
from django.conf import settings

from conftest import start_worker, stop_worker, wait_until
from portal import health, paths


def raw_reply(sock: Path, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(str(sock))
        s.sendall(request)
        return s.recv(200)


def test_the_embedded_redis_refuses_a_client_without_the_password(redis_service):
    password = paths.redis_password()
    assert raw_reply(redis_service, b"PING\r\n").startswith(b"-NOAUTH")
    assert raw_reply(redis_service, b"LPUSH portal x\r\n").startswith(b"-NOAUTH")  # no task can be queued
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=str(redis_service)).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=str(redis_service), password=password[::-1]).ping()
    assert redis.Redis(unix_socket_path=str(redis_service), password=password).ping()
    # The portal's own client, from the settings (which read var/redis_password).
    assert health.redis_client().ping()
    # The file and the config file redis-server read it from are private; its command line
    # (readable by every user) names neither the password nor anything but the socket.
    assert stat.S_IMODE(paths.REDIS_PASSWORD_FILE.stat().st_mode) == 0o600
    assert stat.S_IMODE((paths.REDIS_DIR / "redis.conf").stat().st_mode) == 0o600
    servers = [p for p in psutil.process_iter(["cmdline"])
               if any(str(redis_service) in a for a in p.info["cmdline"] or [])]
    assert servers
    for server in servers:
        assert password not in "\0".join(server.info["cmdline"])
        assert password not in "\0".join(server.environ().values())
    assert password not in (paths.VAR_DIR / "redis.log").read_text()


def test_no_environment_variable_carries_the_password(celery_worker):
    """The settings read the file: neither the test process nor the worker has it in its environment."""
    password = paths.redis_password()
    assert password in settings.REDIS_URL
    assert password not in "\0".join(os.environ.values())
    workers = [p for p in psutil.process_iter(["cmdline"]) if celery_worker in " ".join(p.info["cmdline"] or [])]
    assert workers
    for worker in workers:
        assert password not in "\0".join(worker.environ().values())
        assert password not in "\0".join(worker.cmdline())
    assert password not in (paths.VAR_DIR / "worker.log").read_text()


def run_in(var: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` as the portal's processes run, on this var/ folder, from a login shell's 022 umask."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL"}}
    env["PORTAL_VAR_DIR"] = str(var)
    return subprocess.run([sys.executable, *argv], env=env, cwd=settings.BASE_DIR, capture_output=True,
                          text=True, umask=0o022, timeout=120, check=False)


def test_the_password_file_is_made_once_private_and_kept(tmp_path):
    var = tmp_path / "var"
    first = run_in(var, "manage.py", "check")
    assert first.returncode == 0, first.stderr
    password_file = var / "redis_password"
    password = password_file.read_text()
    assert len(password) >= 40  # secrets.token_urlsafe(32)
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600  # under a 022 umask
    assert password not in first.stdout + first.stderr
    # Another command, another process: the same password, read from the file.
    second = run_in(var, "-c", "from portal import paths; print(paths.redis_password() == "
                    "paths.REDIS_PASSWORD_FILE.read_text(), paths.embedded_redis_url().startswith('redis+socket://:'))")
    assert second.stdout.split() == ["True", "True"], second.stderr
    assert password_file.read_text() == password
    # Deleting the file makes a new one: that is how the password is changed.
    password_file.unlink()
    assert run_in(var, "manage.py", "check").returncode == 0
    assert password_file.read_text() != password


def test_an_unusable_password_file_stops_the_portal_saying_what_to_do(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o700)
    (var / "redis_password").write_text("two words\n")
    result = run_in(var, "manage.py", "check")
    assert result.returncode != 0
    assert f"{var / 'redis_password'} does not hold a usable Redis password" in result.stderr
    assert "delete the file and start the portal again" in result.stderr
    assert "two words" not in result.stderr  # what the file holds is meant to be secret


@pytest.mark.worker
def test_a_worker_with_the_wrong_password_is_refused_and_does_not_print_it(redis_service, django_db_setup,
                                                                           tmp_path):
    # A var/ whose redis/ is the suite's (same socket), with another password in its file.
    var = tmp_path / "var"
    var.mkdir(mode=0o700)
    (var / "redis").symlink_to(paths.REDIS_DIR)
    wrong = "wrong-" + paths.redis_password()[6:]
    (var / "redis_password").write_text(wrong)
    log = tmp_path / "worker.log"
    worker = start_worker("wrongpass", log, extra_env={"PORTAL_VAR_DIR": str(var)})
    try:
        wait_until(lambda: "Cannot connect to" in log.read_text(), timeout=60, interval=0.2,
                   message=f"the worker did not report its refused connection:\n{log.read_text()[-2000:]}")
    finally:
        stop_worker(worker)
    output = log.read_text()
    assert f"Cannot connect to redis+socket://:**@{var / 'redis' / 'redis.sock'}: " \
           "invalid username-password pair" in output
    assert wrong not in output and paths.redis_password() not in output


@pytest.mark.django_db
def test_the_broker_url_is_masked_on_the_health_panel_and_the_debug_pages(role_client, settings):
    password = paths.redis_password()
    # Django's debug pages and error mails show the settings: the URLs holding the password are hidden.
    from django.views.debug import get_default_exception_reporter_filter

    safe = get_default_exception_reporter_filter().get_safe_settings()
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        assert password in getattr(settings, name)
        assert password not in str(safe[name])
    assert password not in str(safe)
    # The health panel names the broker it cannot reach, with its password masked.
    settings.REDIS_URL = f"redis+socket://:{password}@/nonexistent/redis.sock"
    html = role_client("viewer").get("/health/").content.decode()
    assert "The Redis broker at redis+socket://:**@/nonexistent/redis.sock does not answer" in html
    assert password not in html


@pytest.mark.django_db
def test_a_start_refused_by_the_broker_says_so_without_the_password(admin_client_, settings, redis_service):
    from gateways.tests.factories import make_gateway
    from processes.models import Activity

    wrong = "wrong-" + paths.redis_password()[6:]
    settings.REDIS_URL = f"redis+socket://:{wrong}@{redis_service}"
    gateway = make_gateway()
    html = admin_client_.post(f"/gateways/{gateway.name}/start/", follow=True).content.decode()
    assert f"The start of {gateway.name} was not sent: the task broker does not answer (" in html
    assert "invalid username-password pair" in html
    assert wrong not in html and paths.redis_password() not in html
    assert wrong not in "".join(Activity.objects.values_list("message", flat=True))
