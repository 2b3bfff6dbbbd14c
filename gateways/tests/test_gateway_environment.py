"""What a gateway server and its keeper inherit from the worker: nothing of the portal's settings.

A worker is started with the portal's secrets and a random variable in its
environment; a gateway started through it must find none of them in
/proc/<server pid>/environ or /proc/<keeper pid>/environ, while PATH and the
locale are there, and the passphrase verifier reaches the server only.
"""

from __future__ import annotations

import secrets

import pytest

from conftest import start_worker, stop_worker, wait_until
from gateways import runtime
from gateways.tests.conftest import TEST_VERIFIER
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port, wait_state
from portal import paths
from portal.process import keeper
from portal.process.tests.test_keeper_env import environ_of
from processes import control

pytestmark = [pytest.mark.worker]

HOST = "envhost"


@pytest.fixture
def worker_with_secrets(gateway_processes):  # type: ignore[no-untyped-def]
    from portal.celery import app

    canaries = {
        "PORTAL_SECRET_KEY": f"secret-key-{secrets.token_hex(8)}",
        "FOO": f"foo-{secrets.token_hex(8)}",
        "LC_TIME": "C.UTF-8",
    }
    process = start_worker(HOST, paths.VAR_DIR / f"worker-{HOST}.log", extra_env=canaries)
    node = f"test@{HOST}"
    wait_until(lambda: node in (app.control.inspect(destination=[node], timeout=0.5).ping() or {}),
               timeout=60, interval=0.2, message=f"worker {node} did not answer")
    worker_env = environ_of(process.pid)
    assert worker_env["PORTAL_SECRET_KEY"] == canaries["PORTAL_SECRET_KEY"]
    assert "PORTAL_DATABASE_URL" in worker_env and "DJANGO_SETTINGS_MODULE" in worker_env
    yield worker_env
    stop_worker(process)


def test_the_server_and_its_keeper_get_no_portal_setting_only_the_allowlist(
        worker_with_secrets, operator, settings):
    settings.PORTAL_HOST_NAME = HOST
    gateway = make_gateway(port=free_port(), use_passphrase=True, passphrase_verifier=TEST_VERIFIER)
    control.request(gateway, "start", operator)
    gateway = wait_state(gateway, {"running", "fatal", "exited", "stopped"})
    assert gateway.state == "running", gateway.last_error
    assert gateway.run_host == HOST
    keeper_pid = keeper.read_keeper_identity(runtime.run_dir(gateway)).pid
    server, keeper_env = environ_of(gateway.pid), environ_of(keeper_pid)

    portal_only = ["PORTAL_SECRET_KEY", "PORTAL_DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PORTAL_VAR_DIR",
                   "PORTAL_HOST_NAME", "FOO"]
    for env in (server, keeper_env):
        assert not [name for name in portal_only if name in env], sorted(env)
        values = "\0".join(env.values())
        assert worker_with_secrets["PORTAL_SECRET_KEY"] not in values and worker_with_secrets["FOO"] not in values
        # Nor the embedded Redis's password, which would let the gateway queue the portal's tasks.
        assert paths.redis_password() not in values
        assert env["PATH"] == worker_with_secrets["PATH"] and env["LC_TIME"] == "C.UTF-8"
    assert server["GATEWAY_PASSPHRASE"] == TEST_VERIFIER
    assert "GATEWAY_PASSPHRASE" not in keeper_env
    control.request(gateway, "stop", operator)
    wait_state(gateway, {"stopped"})
