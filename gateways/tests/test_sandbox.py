"""A gateway runs whatever its clients send: in its Landlock sandbox (portal/process/sandbox.py) that
code is refused var/, the portal's code and the portal's processes, and still does its work (the
PersonDemo calls, files written outside the portal). With PORTAL_SANDBOX=off the start says plainly
that it is not sandboxed. Real worker, real keepers, real gateway servers and clients."""

from __future__ import annotations

import os

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from gateways.client import connect
from gateways.protocol.errors import RemoteError
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port, run_persondemo, start_and_wait, wait_state
from portal import paths
from portal.process import sandbox
from processes import control, sync, tasks
from processes.models import Activity

pytestmark = [pytest.mark.worker]

ABI = sandbox.abi_version()
needs_landlock = pytest.mark.skipif(
    isinstance(ABI, str) or ABI < sandbox.ABI_NEEDED,
    reason=f"needs Landlock ABI >= {sandbox.ABI_NEEDED} (here: {ABI}); run on Linux >= 6.12 with Landlock enabled",
)


def stand_in(name: str) -> str:
    """A file of var/ (made when this run has none: it must exist to be refused)."""
    path = paths.VAR_DIR / name
    if not path.exists():
        path.write_bytes(b"stand-in")
        path.chmod(0o600)
    return str(path)


def errno_of(gw, module: str, name: str, *args):  # type: ignore[no-untyped-def]
    """What the gateway's ``module.name(*args)`` met: "ok" or the remote exception's type."""
    try:
        gw.invoke(module, name, *args)
    except RemoteError as e:
        return e.remote_type
    return "ok"


@needs_landlock
def test_a_gateway_s_clients_cannot_reach_var_the_portal_s_code_or_processes(gateway_processes, operator, tmp_path):
    from django.conf import settings

    port = free_port()
    gateway = start_and_wait(make_gateway(port=port), operator)
    assert gateway.state == "running", gateway.last_error
    assert gateway.startup["sandbox"].startswith(f"sandboxed (Landlock ABI {ABI}): var/ hidden")
    client = Client()
    client.force_login(operator)
    page = client.get(reverse("gateways:detail", args=[gateway.name])).content.decode()
    assert f"<dt>Sandbox</dt><dd>sandboxed (Landlock ABI {ABI}): var/ hidden" in page
    try:
        with connect("127.0.0.1", port) as gw:
            assert errno_of(gw, "os", "open", stand_in("secret_key"), os.O_RDONLY) == "PermissionError"
            assert errno_of(gw, "os", "listdir", str(paths.VAR_DIR)) == "PermissionError"
            evil = str(settings.BASE_DIR / "sandbox_gateway_probe.py")
            # EACCES from Landlock, or EROFS (OSError) first from the mount namespace of the portal's own user
            assert errno_of(gw, "os", "open", evil, os.O_WRONLY | os.O_CREAT) in ("PermissionError", "OSError")
            assert not os.path.exists(evil)
            assert errno_of(gw, "os", "kill", os.getpid(), 0) == "PermissionError"
            assert errno_of(gw, "os", "open", f"/proc/{os.getpid()}/environ", os.O_RDONLY) == "PermissionError"
            # Less strict than a web application: the rest of the host is writable, where its user may write.
            shared = tmp_path / "shared"
            shared.mkdir()
            shared.chmod(0o777)
            assert errno_of(gw, "os", "open", str(shared / "work.txt"), os.O_WRONLY | os.O_CREAT) == "ok"
        result = run_persondemo(port)
        assert result.returncode == 0, result.stderr
    finally:
        control.request(gateway, "stop", operator)
        wait_state(gateway, {"stopped"})


def test_with_portal_sandbox_off_the_start_says_not_sandboxed(gateway_processes, operator):
    from django.conf import settings

    port = free_port()
    gateway = make_gateway(port=port)
    with override_settings(PORTAL_SANDBOX="off"):
        tasks.start("gateway", gateway.pk, trigger="test")  # here: the worker has its own settings
    try:
        gateway = wait_state(gateway, {"running", "fatal", "exited", "stopped"})
        assert gateway.state == "running", gateway.last_error
        sync.sync("gateway", gateway.pk, settings.PORTAL_HOST_NAME)
        gateway.refresh_from_db()
        assert gateway.startup["sandbox"] == "not sandboxed: PORTAL_SANDBOX=off"
        row = Activity.objects.of(gateway).get(message="not sandboxed: PORTAL_SANDBOX=off")
        assert row.level == "warning"
        client = Client()
        client.force_login(operator)
        page = client.get(reverse("gateways:detail", args=[gateway.name])).content.decode()
        assert "<dt>Sandbox</dt><dd>not sandboxed: PORTAL_SANDBOX=off</dd>" in page
        with connect("127.0.0.1", port) as gw:  # and it really is not: var/ is open to the portal's user
            from processes.accounts import cannot_switch

            expected = "ok" if cannot_switch() else "PermissionError"  # else its own user is the wall
            assert errno_of(gw, "os", "listdir", str(paths.VAR_DIR)) == expected
    finally:
        control.request(gateway, "stop", operator)
        wait_state(gateway, {"stopped"})
