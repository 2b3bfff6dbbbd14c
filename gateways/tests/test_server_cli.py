"""The command line: readiness line, exit codes, signals, secrets kept out of argv and logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateways.client import RemoteError, connect
from gateways.tests import pythons
from gateways.tests.conftest import ROOT, start_gateway_server

PASSPHRASE = "s3cret-passphrase-do-not-show"


def run_server(*args: str, python: str = sys.executable, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "gateways.server", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, env=env, check=False)


def test_missing_msgpack_exits_at_once_naming_the_install_command(tmp_path):
    python = pythons.without_msgpack(tmp_path)
    out = run_server("--port", "0", python=python)
    assert out.returncode == 3
    assert f"{python} -m pip install msgpack" in out.stderr
    assert "listening" not in out.stdout


@pytest.mark.parametrize("minor", ["3.9", "3.10", "3.11", "3.12", "3.13"])
def test_the_server_runs_on_every_python_from_3_9_with_only_msgpack_available(minor, tmp_path, gateway_sample_dir):
    interp = pythons.require(minor, "to run the gateway server on it")
    env = {"PATH": os.environ.get("PATH", "")}
    if not interp.has_msgpack:
        # The venv's msgpack on PYTHONPATH: its compiled part is built for the venv's Python, so other
        # versions use its pure-Python fallback, which is all the server needs. No download, no build.
        import msgpack

        shim = tmp_path / "shim"
        shim.mkdir()
        (shim / "msgpack").symlink_to(Path(msgpack.__file__).parent)
        env["PYTHONPATH"] = str(shim)
    proc = subprocess.Popen([interp.path, "-m", "gateways.server", "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), proc.stderr.read()
        with connect("127.0.0.1", int(line.rsplit(":", 1)[1])) as gw:
            assert gw.version()["python"] == interp.version_text
            gw.add_to_class_path(str(gateway_sample_dir))
            car = gw.new("gwsample.Car", "Saab")
            assert car.engine.describe() == "engine of 100"
            assert gw.new("gwsample.Car", "Fiat").engine.describe() == "engine of 100"
            assert car.pair() == ("Saab", "red")
            assert gw.invoke("gwsample", "for_each", [1, 2], lambda x: x + 1) == [2, 3]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_the_passphrase_never_appears_in_argv_the_environment_or_the_log(tmp_path, gateway_sample_dir):
    server = start_gateway_server(tmp_path, env_passphrase=PASSPHRASE)
    try:
        cmdline = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().decode()
        assert PASSPHRASE not in cmdline
        ps = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(server.proc.pid)], capture_output=True,
                            text=True, check=False)
        assert "gateways.server" in ps.stdout and PASSPHRASE not in ps.stdout
        with pytest.raises(Exception, match="authentication failed"):
            connect(server.host, server.port, passphrase=PASSPHRASE + "x")
        with connect(server.host, server.port, passphrase=PASSPHRASE) as gw:
            assert gw.invoke("os.environ", "get", "GATEWAY_PASSPHRASE") is None
        log = server.wait_for_log("authentication failed")
        assert PASSPHRASE not in log
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_termination_signal_closes_the_listener_and_exits_zero(tmp_path, sig):
    server = start_gateway_server(tmp_path)
    with connect(server.host, server.port) as gw:
        assert gw.ping()
        server.proc.send_signal(sig)
        assert server.proc.wait(timeout=10) == 0
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2).close()
    server.stop()


def test_a_loopback_peer_may_shut_down_a_server_without_passphrase(tmp_path):
    server = start_gateway_server(tmp_path)
    with connect(server.host, server.port) as gw:
        gw.shutdown()
    assert server.proc.wait(timeout=10) == 0
    assert "shutdown requested" in server.log_text()
    server.stop()


def _external_ipv4() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_a_non_loopback_peer_may_not_shut_down_a_server_without_passphrase(tmp_path):
    ip = _external_ipv4()
    if ip is None:
        pytest.skip("no non-loopback address on this host")
    server = start_gateway_server(tmp_path, "--host", "0.0.0.0")
    try:
        with connect(ip, server.port) as gw:
            with pytest.raises(RemoteError) as info:
                gw.shutdown()
            assert info.value.remote_type == "PermissionError"
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0


def test_an_address_in_use_exits_with_code_4():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        out = run_server("--port", str(busy.getsockname()[1]))
    assert out.returncode == 4
    assert "cannot listen" in out.stderr


def test_an_unreadable_passphrase_file_exits_with_code_5(tmp_path):
    out = run_server("--port", "0", "--passphrase-file", str(tmp_path / "missing"))
    assert out.returncode == 5
    assert "passphrase" in out.stderr


def test_a_malformed_verifier_exits_with_code_5(tmp_path):
    env = dict(os.environ, GATEWAY_PASSPHRASE="pbkdf2_sha256$x$y$z")
    out = run_server("--port", "0", env=env)
    assert out.returncode == 5


def test_the_passphrase_is_not_accepted_as_an_argument():
    out = run_server("--port", "0", "--passphrase", "visible")
    assert out.returncode == 2


def test_the_max_frame_bytes_option_limits_frames(tmp_path):
    server = start_gateway_server(tmp_path, "--max-frame-bytes", "4096")
    try:
        with connect(server.host, server.port) as gw:
            assert gw.invoke("builtins", "len", "x" * 1000) == 1000
            from gateways.client import ConnectionLost

            with pytest.raises((ConnectionLost, RemoteError)):
                gw.invoke("builtins", "len", "x" * 10000)
        server.wait_for_log("exceeds the limit of 4096 bytes")
    finally:
        server.stop()


def test_missing_msgpack_in_a_distributions_own_python_names_what_works_there():
    python = "/usr/bin/python3"
    probe = subprocess.run([python, "-c", "import os, sys, sysconfig; print(int(os.path.exists(os.path.join("
                            "sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'))))"],
                           capture_output=True, text=True, check=False) if os.path.exists(python) else None
    lacks = probe is not None and subprocess.run([python, "-c", "import msgpack"], capture_output=True,
                                                 check=False).returncode != 0
    if probe is None or probe.stdout.strip() != "1" or not lacks:
        pytest.skip(f"{python} is not a distribution-managed Python without msgpack here (Debian 12's is)")
    out = run_server("--port", "0", python=python)
    assert out.returncode == 3
    assert "externally-managed-environment" in out.stderr
    assert "apt-get install python3-msgpack" in out.stderr
    assert f"{python} -m venv /opt/python-venv && /opt/python-venv/bin/pip install msgpack" in out.stderr
    assert f"{python} -m pip install msgpack" not in out.stderr
