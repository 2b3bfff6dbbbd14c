"""var/ is the portal's alone: 0700 folders and 0600 files from the first write, looser modes fixed at start.

Each test starts from a fresh var/ made by the real code paths, in processes
whose inherited umask is the usual 022: the portal must set its own.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings

from conftest import wait_until
from portal import redis_server
from portal.process import keeper
from portal.process.spec import Spec


def loose_paths(root: Path) -> list[str]:
    """Everything under root (root included) that another user could read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
            found.append(f"{path} {stat.S_IMODE(st.st_mode):04o}")
    return found


def modes(root: Path) -> dict[str, set[int]]:
    """The modes of folders and of regular files under root."""
    result: dict[str, set[int]] = {"dirs": set(), "files": set()}
    for path in [root, *root.rglob("*")]:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            result["dirs"].add(stat.S_IMODE(st.st_mode))
        elif stat.S_ISREG(st.st_mode):
            result["files"].add(stat.S_IMODE(st.st_mode))
    return result


def portal_env(var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "PORTAL_DATABASE_URL", "PORTAL_SECRET_KEY"}}
    env["PORTAL_VAR_DIR"] = str(var)
    return env


def manage(var: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # umask=0o022: what a login shell gives; the portal must not depend on a stricter one.
    return subprocess.run([sys.executable, "manage.py", *args], env=portal_env(var), cwd=settings.BASE_DIR,
                          capture_output=True, text=True, umask=0o022, timeout=120, check=False)


def test_a_fresh_var_made_by_migrate_is_private(tmp_path):
    var = tmp_path / "var"
    result = manage(var, "migrate", "-v0")
    assert result.returncode == 0, result.stderr
    assert (var / "portal.sqlite3").exists() and (var / "secret_key").exists()
    assert loose_paths(var) == []
    assert modes(var) == {"dirs": {0o700}, "files": {0o600}}


def test_the_database_another_user_could_read_is_fixed_and_reported(tmp_path):
    var = tmp_path / "var"
    assert manage(var, "migrate", "-v0").returncode == 0
    # As an older portal left it: 0755 folders, 0644 files.
    (var / "log").mkdir(exist_ok=True)
    (var / "log" / "access.log").write_text("GET /\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("not var's")
    outside.chmod(0o644)
    (var / "log" / "link").symlink_to(outside)
    for path in (var, var / "log"):
        path.chmod(0o755)
    for path in (var / "portal.sqlite3", var / "secret_key", var / "log" / "access.log"):
        path.chmod(0o644)

    result = manage(var, "check")
    assert result.returncode == 0, result.stderr
    for path in (var, var / "log", var / "portal.sqlite3", var / "secret_key", var / "log" / "access.log"):
        assert f"{path} was mode" in result.stderr, result.stderr
    assert "made it 0600" in result.stderr and "made it 0700" in result.stderr
    assert loose_paths(var) == []
    # A link is not followed: what it points to is not var/'s to change.
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    # Said once: the next start finds nothing to fix.
    assert "was mode" not in manage(var, "check").stderr


def test_sockets_and_virtualenvs_inside_var_are_left_as_they_are(tmp_path):
    # An application's socket is 0660 for the front; a virtualenv's thousands of files keep pip's
    # modes (its own folder is closed). Before: every Django process walked and tightened them all.
    import socket

    var = tmp_path / "var"
    assert manage(var, "migrate", "-v0").returncode == 0
    venv = var / "venvs" / "one" / "env-abc"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "gunicorn").write_text("#!/bin/sh\n")
    (venv / "bin" / "gunicorn").chmod(0o755)
    venv.chmod(0o755)
    run = var / "run" / "webapps" / "one"
    run.mkdir(parents=True, mode=0o700)
    sock_path = run / "app.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        sock_path.chmod(0o660)
        result = manage(var, "check")
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(sock_path.stat().st_mode) == 0o660
    assert stat.S_IMODE((venv / "bin" / "gunicorn").stat().st_mode) == 0o755
    assert stat.S_IMODE(venv.stat().st_mode) == 0o700
    assert "gunicorn" not in result.stderr and "app.sock" not in result.stderr
    assert f"{venv} was mode 0755, readable by other users: made it 0700" in result.stderr


def test_a_keeper_makes_its_run_folder_and_the_log_private(tmp_path):
    var = tmp_path / "var"
    run_dir = var / "run" / "gateways" / "one"
    log_file = var / "log" / "gateways" / "one.log"
    spec = Spec(name="one", argv=[sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
                log_file=str(log_file), stop_timeout=2.0)
    old = os.umask(0o022)  # as a worker started from a login shell would have it
    try:
        keeper.launch(spec, run_dir)
        keeper.wait_for(run_dir, {"running"}, timeout=10)
        wait_until(lambda: log_file.exists() and "up" in log_file.read_text(), timeout=5)
        assert keeper.request_stop(run_dir, timeout=10)
    finally:
        os.umask(old)
    assert (run_dir / "spec.json").exists() and (run_dir / "status.json").exists()
    assert loose_paths(var) == []
    assert modes(var) == {"dirs": {0o700}, "files": {0o600}}


def test_the_embedded_redis_writes_only_private_files(tmp_path):
    password = "private-files-" + "p" * 20
    data_dir = tmp_path / "var" / "redis"
    old = os.umask(0o022)
    try:
        process = redis_server.start(data_dir, password=password, log_file=tmp_path / "var" / "redis.log")
    finally:
        os.umask(old)
    try:
        wait_until(lambda: any(data_dir.rglob("*.aof")), timeout=10)
        redis.Redis(unix_socket_path=str(data_dir / "redis.sock"), password=password).save()
        wait_until(lambda: (data_dir / "dump.rdb").exists(), timeout=10)
    finally:
        process.terminate()
        process.wait(10)
    # The config file that holds the password is among them (0600 whatever the umask).
    assert (data_dir / "redis.conf").exists()
    assert loose_paths(tmp_path / "var") == []


@pytest.mark.parametrize("entry", ["relative/logs"])
def test_a_relative_log_root_stops_the_portal_with_a_clear_message(tmp_path, entry):
    env = portal_env(tmp_path / "var") | {"PORTAL_LOG_ROOTS": entry}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, cwd=settings.BASE_DIR,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert f"PORTAL_LOG_ROOTS names '{entry}', which is not an absolute path" in result.stderr


def test_the_launcher_fixes_and_reports_loose_modes_before_it_starts_anything(tmp_path):
    var = tmp_path / "var"
    (var / "log").mkdir(parents=True)
    (var / "log" / "access.log").write_text("GET /\n")
    (var / "log" / "access.log").chmod(0o644)
    var.chmod(0o755)
    env = portal_env(var) | {"PORTAL_PORT": "1"}  # it never gets as far as serving
    launcher = subprocess.Popen([sys.executable, "-m", "portal.launcher"], env=env, cwd=settings.BASE_DIR,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, umask=0o022)
    lines: list[str] = []
    try:
        assert launcher.stdout is not None
        for line in launcher.stdout:
            lines.append(line)
            # The warnings come before the launcher starts any part ("[portal] starting redis").
            if line.startswith("[portal] starting ") or "starting the embedded Redis" in line:
                break
    finally:
        launcher.terminate()
        launcher.wait(30)
    output = "".join(lines)
    assert f"[portal] warning: {var} was mode 0755, readable by other users: made it 0700" in output
    assert f"[portal] warning: {var / 'log' / 'access.log'} was mode 0644" in output
    assert loose_paths(var) == []
