"""Hosted code runs as a user of its own, never as the portal's (portal/process/accounts.py).

Through the real worker, real keepers and real gateway servers: each gateway runs as a dynamic
user of its own, and what the trials did from inside as the portal's user (chmod of var/, of the
database and of the Redis password; a connect to the portal's unix sockets; a signal to the
portal) is refused by the kernel's own checks, with the Landlock sandbox turned off so that the
user alone is what refuses it. Run as names an existing user; root only where allowed.
Skipped, with the reason, where the portal cannot switch users (not root).
"""

from __future__ import annotations

import os
import socket
import stat

import pytest
from django.conf import settings

from gateways.client import connect
from gateways.forms import GatewayForm
from gateways.protocol.errors import RemoteError
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port, start_and_wait, wait_state
from portal import paths
from portal.process import accounts, keeper
from processes import control
from processes.accounts import cannot_switch
from processes.adapters import adapter_of
from processes.models import Activity, HostedUser

REASON = cannot_switch()
switched = pytest.mark.skipif(REASON is not None, reason=f"hosted users are not switched here: {REASON}")
pytestmark = [pytest.mark.worker]


def remote(gw, module: str, name: str, *args):  # type: ignore[no-untyped-def]
    """``module.name(*args)`` in the gateway: its value, or the remote exception's type."""
    try:
        return gw.invoke(module, name, *args)
    except RemoteError as e:
        return e.remote_type


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Uid:"))


@switched
def test_each_gateway_runs_as_a_user_of_its_own_and_cannot_touch_the_portal(gateway_processes, operator):
    first = start_and_wait(make_gateway(name="First", port=free_port()), operator)
    second = start_and_wait(make_gateway(name="Second", port=free_port()), operator)
    try:
        assert first.state == "running", first.last_error
        assert second.state == "running", second.last_error
        low, high = settings.PORTAL_HOSTED_UIDS
        uids = {uid_of(first.pid), uid_of(second.pid)}
        assert len(uids) == 2 and all(low <= uid <= high for uid in uids), uids
        assert uids == set(HostedUser.objects.values_list("uid", flat=True))
        assert first.startup["account"].startswith("its own user (uid ")
        with connect("127.0.0.1", first.port) as gw:
            assert remote(gw, "os", "getuid") == uid_of(first.pid)
            # Trial 3: chmod and chown are no file accesses to Landlock; the owner check refuses them.
            for path in (paths.VAR_DIR, paths.VAR_DIR / "redis_password", paths.HOSTED_DIR / "gateways"):
                assert remote(gw, "os", "chmod", str(path), 0o777) == "PermissionError", path
            assert remote(gw, "os", "chown", str(paths.VAR_DIR), 0, 0) == "PermissionError"
            # The other gateway's folder and the portal's processes.
            other_home = paths.HOSTED_DIR / "gateways" / str(second.run_key)
            assert remote(gw, "os", "listdir", str(other_home)) == "PermissionError"
            assert remote(gw, "os", "kill", os.getpid(), 0) == "PermissionError"
            assert remote(gw, "os", "kill", second.pid, 0) == "PermissionError"
        assert stat.S_IMODE(os.stat(paths.VAR_DIR).st_mode) == 0o700
    finally:
        for gateway in (first, second):
            control.request(gateway, "stop", operator)
            wait_state(gateway, {"stopped"})


@switched
def test_without_the_sandbox_the_user_alone_keeps_var_and_the_portal_s_sockets_out_of_reach(
        gateway_processes, operator):
    # A unix socket of the portal's, as gunicorn's control socket was: in a 0700 folder of var/.
    folder = paths.RUN_DIR / "probe-socket"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "control.sock"
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    # Started by a real keeper from here, with the gateway's own user and no Landlock policy: the
    # user alone is what refuses.
    gateway = make_gateway(port=free_port())
    kind = adapter_of(gateway)
    account = kind.prepare_account(gateway)
    spec = kind.build_spec(gateway)
    spec.account, spec.sandbox = account.to_dict(), None
    run_dir = kind.run_dir(gateway)
    keeper.launch(spec, run_dir, trigger="test")
    try:
        status = keeper.wait_for(run_dir, {"running", "fatal", "exited"}, timeout=20)
        assert status and status.get("state") == "running", status
        assert uid_of(status["pid"]) == account.uid
        with connect("127.0.0.1", gateway.port) as gw:
            assert remote(gw, "os", "getuid") == account.uid
            assert remote(gw, "os", "open", str(paths.VAR_DIR / "secret_key"), os.O_RDONLY) == "PermissionError"
            assert remote(gw, "os", "listdir", str(paths.VAR_DIR)) == "PermissionError"
            assert remote(gw, "os", "chmod", str(paths.VAR_DIR), 0o755) == "PermissionError"
            sock = gw.invoke("socket", "socket", int(socket.AF_UNIX))
            with pytest.raises(RemoteError) as refused:
                sock.connect(str(path))
            assert refused.value.remote_type == "PermissionError"
            home = str(paths.HOSTED_DIR / "gateways" / str(gateway.run_key))
            assert remote(gw, "os", "stat", home)[4] == account.uid
        assert stat.S_IMODE(os.stat(paths.VAR_DIR).st_mode) == 0o700
    finally:
        listener.close()
        keeper.request_stop(run_dir, trigger="test")


@switched
def test_run_as_names_a_user_and_root_needs_an_administrator_s_leave(gateway_processes, operator):
    nobody = accounts.nobody("/")
    named = start_and_wait(make_gateway(name="Nobody", port=free_port(), run_as="nobody"), operator)
    try:
        assert named.state == "running", named.last_error
        assert uid_of(named.pid) == nobody.uid
    finally:
        control.request(named, "stop", operator)
        wait_state(named, {"stopped"})

    refused = start_and_wait(make_gateway(name="Rooted", port=free_port(), run_as="root"), operator)
    assert refused.state == "stopped"
    assert "which is root: an Administrator must tick" in refused.last_error

    allowed = make_gateway(name="RootOk", port=free_port(), run_as="root", allow_root=True)
    allowed = start_and_wait(allowed, operator)
    try:
        assert allowed.state == "running", allowed.last_error
        assert uid_of(allowed.pid) == 0
        warning = Activity.objects.of(allowed).filter(level="warning").values_list("message", flat=True)
        assert any("Runs as root" in m for m in warning)
        assert allowed.runs_as_root and allowed.runs_as == "root (allowed by an Administrator)"
        status = control.status_of(allowed)  # the CLI and the API say it too
        assert (status["run_as"], status["runs_as"], status["runs_as_root"]) == (
            "root", "root (allowed by an Administrator)", True)
    finally:
        control.request(allowed, "stop", operator)
        wait_state(allowed, {"stopped"})


@switched
@pytest.mark.django_db
def test_the_form_asks_for_leave_to_run_as_root_and_knows_the_users():
    base = {"name": "Form", "server": "127.0.0.1", "port": 25001, "restart_policy": "on-failure",
            "connection_timeout": 5, "init_timeout": 5, "stop_timeout": 5, "allow_no_passphrase": "on"}
    form = GatewayForm({**base, "run_as": "root"})
    assert not form.is_valid()
    assert 'tick "Allow running as root"' in " ".join(form.errors["run_as"])
    form = GatewayForm({**base, "allow_root": "on"})
    assert not form.is_valid() and "applies only when Run as is root" in " ".join(form.errors["allow_root"])
    form = GatewayForm({**base, "run_as": "no such user!"})
    assert not form.is_valid() and "Run as takes a user name" in " ".join(form.errors["run_as"])
    form = GatewayForm({**base, "run_as": "nosuchuser"})
    assert form.is_valid(), form.errors
    assert any("There is no user 'nosuchuser' on this host" in w for w in form.warnings), form.warnings
    assert GatewayForm({**base, "run_as": "root", "allow_root": "on"}).is_valid()
    # A uid the portal gives to definitions of their own is never named: it would be shared.
    form = GatewayForm({**base, "run_as": "40000"})
    assert not form.is_valid() and "PORTAL_HOSTED_UIDS 40000-49999" in " ".join(form.errors["run_as"])
    form = GatewayForm({**base, "run_as": "39999"})
    assert form.is_valid() and any("No user has the uid 39999" in w for w in form.warnings), form.warnings
    form = GatewayForm({**base, "run_as": "x" * 200})
    assert not form.is_valid() and " ".join(form.errors["run_as"]).startswith("Run as takes a user name (at most 32")
    # A user another definition runs as: they could reach each other, and the form says so.
    make_gateway(name="Other", port=25002, run_as="nobody")
    form = GatewayForm({**base, "run_as": "nobody"})
    assert form.is_valid() and any(w.startswith("gateway Other also runs as nobody") for w in form.warnings)


@pytest.mark.skipif(REASON is None, reason="the portal switches users here (root): run as an ordinary user")
def test_as_the_portal_s_own_user_each_start_says_so_and_var_is_hidden_by_a_namespace(gateway_processes, operator):
    """The portal runs as an ordinary user: hosted code runs as that user. Each start says so (why,
    in Activity and the startup details), and where the kernel allows it the sandbox's private mount
    namespace covers var/, so that even chmod, which Landlock does not check, cannot open it."""
    from portal.process import sandbox

    gateway = start_and_wait(make_gateway(port=free_port()), operator)
    try:
        assert gateway.state == "running", gateway.last_error
        warnings = list(Activity.objects.of(gateway).filter(level="warning").values_list("message", flat=True))
        assert any(m.startswith(f"Runs as the portal's own user ({accounts.portal_user()})") for m in warnings)
        assert gateway.startup["account"].startswith(f"the portal's own user ({accounts.portal_user()})")
        with connect("127.0.0.1", gateway.port) as gw:
            assert remote(gw, "os", "getuid") == os.getuid()
            if sandbox.userns_unavailable() is None and isinstance(sandbox.abi_version(), int):
                assert "hidden from it by a private mount namespace" in gateway.startup["account"]
                assert remote(gw, "os", "chmod", str(paths.VAR_DIR), 0o755) in ("OSError", "PermissionError")
                assert remote(gw, "os", "chmod", str(settings.BASE_DIR / "manage.py"), 0o777) in (
                    "OSError", "PermissionError")
        assert stat.S_IMODE(os.stat(paths.VAR_DIR).st_mode) == 0o700
    finally:
        control.request(gateway, "stop", operator)
        wait_state(gateway, {"stopped"})


@switched
def test_a_deleted_gateway_s_folder_goes_and_its_uid_is_never_given_again(gateway_processes, operator, administrator):
    from processes import services

    gateway = start_and_wait(make_gateway(name="Gone", port=free_port()), operator)
    assert gateway.state == "running", gateway.last_error
    control.request(gateway, "stop", operator)
    wait_state(gateway, {"stopped"})
    home = paths.HOSTED_DIR / "gateways" / str(gateway.run_key)
    uid = HostedUser.objects.get(object_id=gateway.pk).uid
    assert home.is_dir()
    services.delete_definition(gateway, administrator)
    assert not home.exists()
    successor = start_and_wait(make_gateway(name="Next", port=free_port()), operator)
    try:
        assert successor.state == "running", successor.last_error
        assert uid_of(successor.pid) != uid
        assert HostedUser.objects.filter(uid=uid).exists()  # kept: never given again
    finally:
        control.request(successor, "stop", operator)
        wait_state(successor, {"stopped"})


@switched
def test_a_changed_run_as_starts_in_a_fresh_folder_of_the_new_user(gateway_processes, operator):
    """What the former user left in the folder (the mirror of the portal's path, caches, a
    virtualenv) is not the new user's: the folder starts again empty, owned by the new one."""
    gateway = start_and_wait(make_gateway(name="Changes", port=free_port()), operator)
    assert gateway.state == "running", gateway.last_error
    control.request(gateway, "stop", operator)
    wait_state(gateway, {"stopped"})
    folder = paths.HOSTED_DIR / "gateways" / str(gateway.run_key)
    left = folder / "home" / "left-by-the-former-user"
    left.write_text("x")
    os.chown(left, uid_of_folder(folder), uid_of_folder(folder))
    type(gateway).objects.filter(pk=gateway.pk).update(run_as="nobody")
    gateway = start_and_wait(gateway, operator)
    try:
        assert gateway.state == "running", gateway.last_error
        assert uid_of(gateway.pid) == accounts.nobody("/").uid
        assert folder.stat().st_uid == accounts.nobody("/").uid and not left.exists()
    finally:
        control.request(gateway, "stop", operator)
        wait_state(gateway, {"stopped"})


def uid_of_folder(folder) -> int:  # type: ignore[no-untyped-def]
    return folder.stat().st_uid


def test_check_deploy_says_when_hosted_code_runs_as_the_portal_s_user(settings):
    from django.core.checks import run_checks

    settings.PORTAL_HOSTED_USERS = "off"
    found = [m for m in run_checks(include_deployment_checks=True) if m.id == "processes.W001"]
    assert len(found) == 1 and "run as the portal's own user" in found[0].msg and "PORTAL_HOSTED_USERS=off" in found[0].msg
    settings.PORTAL_HOSTED_USERS = "auto"
    found = [m for m in run_checks(include_deployment_checks=True) if m.id == "processes.W001"]
    assert bool(found) == (cannot_switch() is not None)
