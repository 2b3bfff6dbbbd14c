"""What a managed process and its keeper inherit: an allowlisted environment only.

Real keeper, real child; their environments are read from /proc/PID/environ, which
any process of the same user can read.
"""

from __future__ import annotations

import os

import pytest

from portal.process import keeper
from portal.process.spec import Spec, inherited_env
from portal.process.tests.conftest import server_argv
from portal.process.tests.test_keeper_start_stop import tcp_spec

CANARIES = {
    "PORTAL_SECRET_KEY": "canary-secret-key-5d1f",
    "PORTAL_DATABASE_URL": "postgres://portal:canary-db-pass@db/portal",
    "REDIS_URL": "redis://:canary-redis-pass@localhost:6379/0",
    "DJANGO_SETTINGS_MODULE": "portal.settings",
    "FOO": "canary-foo-8c2e",
}


def environ_of(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read()
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if b"=" in item)


@pytest.fixture
def portal_like_env(monkeypatch):  # type: ignore[no-untyped-def]
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_TIME", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")


def test_child_and_keeper_get_the_allowlist_and_the_spec_env_but_no_portal_setting(run_dir, port, tag,
                                                                                     portal_like_env):
    spec = tcp_spec(port, tag, env={"GATEWAY_PASSPHRASE": "verifier-canary-77", "APP_MODE": "demo"},
                    secret_env=["GATEWAY_PASSPHRASE"])
    info = keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"running", "fatal"}, timeout=10)
    assert status["state"] == "running"
    child, keeper_env = environ_of(status["pid"]), environ_of(info.keeper.pid)
    for env in (child, keeper_env):
        assert not set(CANARIES) & set(env), sorted(env)
        assert not any(value in "".join(env.values()) for value in CANARIES.values())
        assert env["PATH"] == os.environ["PATH"] and env["LC_TIME"] == "C.UTF-8" and env["TZ"] == "UTC"
    assert child["GATEWAY_PASSPHRASE"] == "verifier-canary-77" and child["APP_MODE"] == "demo"
    # The secret reaches the child from spec.json, not through the keeper's own environment.
    assert "GATEWAY_PASSPHRASE" not in keeper_env and "APP_MODE" not in keeper_env
    assert keeper.request_stop(run_dir, timeout=10)


def test_a_name_in_pass_env_is_passed_on_and_nothing_else(run_dir, port, tag, portal_like_env, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    spec = Spec(name="demo", argv=server_argv(port, tag), pass_env=["HTTP_PROXY"],
                probe={"kind": "tcp", "host": "127.0.0.1", "port": port}, stop_timeout=2.0)
    info = keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"running", "fatal"}, timeout=10)
    child = environ_of(status["pid"])
    assert child["HTTP_PROXY"] == "http://proxy.example:3128"
    assert environ_of(info.keeper.pid)["HTTP_PROXY"] == "http://proxy.example:3128"
    assert "FOO" not in child and "PORTAL_SECRET_KEY" not in child
    assert keeper.request_stop(run_dir, timeout=10)


def test_the_allowlist_keeps_locale_paths_and_user_and_drops_the_rest():
    environ = {"PATH": "/bin", "LANG": "C.UTF-8", "LC_ALL": "C", "HOME": "/root", "USER": "root",
               "LOGNAME": "root", "TMPDIR": "/tmp", "TZ": "UTC", **CANARIES, "CELERY_LOADER": "x",
               "NOTIFY_SOCKET": "/run/systemd/notify", "PYTHONSTARTUP": "/tmp/x.py"}
    assert inherited_env(environ) == {"PATH": "/bin", "LANG": "C.UTF-8", "LC_ALL": "C", "HOME": "/root",
                                      "USER": "root", "LOGNAME": "root", "TMPDIR": "/tmp", "TZ": "UTC"}
