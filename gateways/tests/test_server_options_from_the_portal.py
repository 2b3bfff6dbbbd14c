"""The server's connection caps and timeouts, set for every gateway through PORTAL_GATEWAY_SERVER_OPTIONS."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from conftest import wait_until
from gateways import runtime
from gateways.client import ConnectionLost, ProtocolError, connect
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port
from portal.settings import _gateway_server_options


def test_the_options_are_read_as_pairs_of_an_option_and_a_number():
    assert _gateway_server_options("--max-connections 200 --idle-timeout 0.5") == [
        "--max-connections", "200", "--idle-timeout", "0.5"]
    assert _gateway_server_options("") == []


@pytest.mark.parametrize("text", ["--port 80", "--max-connections", "--idle-timeout soon", "--max-connections '5",
                                  "--log-file /etc/passwd", "max-connections 5"])
def test_anything_else_stops_the_portal_with_a_message_that_names_the_options(text):
    with pytest.raises(ImproperlyConfigured, match=r"give pairs of an option and a number.*--idle-timeout"):
        _gateway_server_options(text)


@pytest.mark.django_db
def test_a_gateway_started_from_its_spec_runs_with_the_configured_options(settings, tmp_path):
    settings.GATEWAY_SERVER_OPTIONS = ["--max-connections", "2", "--idle-timeout", "30"]
    gateway = make_gateway(port=free_port(), log_file=str(tmp_path / "gw.log"))
    spec = runtime.build_spec(gateway)
    assert spec.argv[-4:] == ["--max-connections", "2", "--idle-timeout", "30"]
    with open(spec.log_file, "ab") as out:  # as the keeper runs it: stdout into the log file
        proc = subprocess.Popen(spec.argv, cwd=spec.cwd, env={**os.environ, **spec.env}, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "listening on" in open(spec.log_file).read())
        held = [connect("127.0.0.1", gateway.port) for _ in range(2)]
        with pytest.raises(ProtocolError, match="serves at most 2 at once"):
            connect("127.0.0.1", gateway.port)
        for gw in held:
            gw.close()
    finally:
        proc.terminate()
        proc.wait(10)
    assert re.search(r"started pid=\d+ .* max-connections=2 .* idle-timeout=30", open(spec.log_file).read())


@pytest.mark.django_db
def test_a_managed_server_never_opens_its_log_path_itself(tmp_path):
    """The keeper checked and opened the log; a symlink swapped in since then must not be followed."""
    log = tmp_path / "gw.log"
    gateway = make_gateway(port=free_port(), log_file=str(log))
    spec = runtime.build_spec(gateway)
    assert spec.argv[spec.argv.index("--log-file") + 1] == "-"
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    with open(log, "ab") as out:  # as the keeper runs it
        proc = subprocess.Popen(spec.argv, cwd=spec.cwd, env={**os.environ, **spec.env}, stdout=out,
                                stderr=subprocess.STDOUT)
    log.unlink()
    log.symlink_to(victim)  # swapped after the keeper's check
    try:
        wait_until(lambda: _answers(gateway.port), timeout=10)
        open_paths = {os.path.realpath(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")}
        assert str(victim) not in open_paths
    finally:
        proc.terminate()
        proc.wait(10)
    assert victim.read_text() == "keep me\n"


def _answers(port: int) -> bool:
    try:
        connect("127.0.0.1", port).close()
    except (OSError, ConnectionLost):
        return False
    return True
