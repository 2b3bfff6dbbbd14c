import os
import socket
import sys

import psutil
import pytest

from gateways.tests import pythons
from portal.process.checks import (
    check_bind_address,
    check_modules,
    check_port_free,
    check_python,
    local_addresses,
    port_holder,
)


def test_the_running_python_passes():
    assert check_python(sys.executable) is None
    assert check_modules(sys.executable) is None


def test_a_missing_python_is_named_with_how_to_fix_it(tmp_path):
    failure = check_python(str(tmp_path / "python9"))
    assert failure.code == "python-missing"
    assert f"{tmp_path / 'python9'} does not exist" in failure.message
    assert "Python 3.9 or newer" in failure.message


def test_a_non_executable_python_is_refused(tmp_path):
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n")
    failure = check_python(str(path))
    assert failure.code == "python-not-executable"
    assert "chmod +x" in failure.message


def test_a_program_that_is_not_python_is_refused(tmp_path):
    failure = check_python("/bin/true")
    assert failure.code == "not-python"
    assert failure.message.startswith("/bin/true is not a Python interpreter (asked its version with -c, it "
                                      "printed no version)")
    failure = check_python("/bin/ls")
    assert failure.message.startswith("/bin/ls is not a Python interpreter (asked its version with -c, it ended "
                                      "with exit code 2: /bin/ls: cannot access")


@pytest.mark.parametrize("minor", ["2.7", "3.6"])
def test_a_python_older_than_3_9_is_refused(minor):
    old = pythons.require(minor, "the check must refuse it")
    failure = check_python(old.path)
    assert failure.code == "python-too-old"
    assert f"is Python {old.version_text}; Python 3.9 or newer is needed" in failure.message


def test_a_python_without_msgpack_names_the_exact_install_command(tmp_path):
    path = pythons.without_msgpack(tmp_path)
    assert check_python(path) is None
    failure = check_modules(path, ["msgpack"])
    assert failure.code == "modules-missing"
    assert f"install with: {path} -m pip install msgpack" in failure.message
    assert failure.fix_argv == [path, "-m", "pip", "install", "msgpack"]


def test_a_held_port_names_its_holder_pid_and_name():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        me = psutil.Process()
        assert port_holder("127.0.0.1", port) == (os.getpid(), me.name())
        assert port_holder("0.0.0.0", port) == (os.getpid(), me.name())
        failure = check_port_free("127.0.0.1", port)
    assert failure.code == "port-in-use"
    advice = f"port {port} on 127.0.0.1 is already in use by pid {os.getpid()} ({me.name()}); stop that process or "
    assert failure.message.startswith(advice + "choose another port, e.g. ")
    suggested = int(failure.message.rsplit(" ", 1)[1])
    assert suggested > port and check_port_free("127.0.0.1", suggested) is None


def test_a_port_the_portal_keeps_for_itself_is_said_to_be_the_portals_with_a_free_one_suggested():
    with socket.socket() as front, socket.socket() as next_one:
        front.bind(("127.0.0.1", 0))
        front.listen()
        port = front.getsockname()[1]
        taken = port + 1
        try:
            next_one.bind(("127.0.0.1", taken))
            next_one.listen()
        except OSError:
            pass  # held by another program already: taken all the same
        failure = check_port_free("127.0.0.1", port, reserved={port: "the portal's own front (PORTAL_APPS_PORT)"},
                                  avoid={port + 2})
        assert failure is not None
        assert failure.message.startswith(f"port {port} on 127.0.0.1 is the portal's own front (PORTAL_APPS_PORT), "
                                          "which the portal itself listens on: choose another port, e.g. ")
        assert "stop" not in failure.message and "pid" not in failure.message
        suggested = int(failure.message.rsplit(" ", 1)[1])
        assert suggested > port + 2
    assert check_port_free("127.0.0.1", suggested) is None


def test_a_free_port_passes():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert check_port_free("127.0.0.1", port) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0.0.0.0", "::"])
def test_local_and_wildcard_addresses_pass(host):
    assert check_bind_address(host) is None


def test_a_loopback_address_beside_127_0_0_1_passes():
    """127.0.0.3 is no interface's address, yet a server listens there (lo routes 127.0.0.0/8)."""
    assert "127.0.0.3" not in local_addresses()
    assert check_bind_address("127.0.0.3") is None


def test_a_non_local_address_is_refused():
    failure = check_bind_address("192.0.2.10")  # TEST-NET-1: never assigned to a real host
    assert failure.code == "address-not-local"
    assert failure.message.startswith(f"192.0.2.10 is not an address of this host ({socket.gethostname()})")
    assert "run this server on a worker on that host, or use 127.0.0.1" in failure.message


def test_an_unresolvable_name_is_refused():
    failure = check_bind_address("no-such-host.invalid")
    assert failure.code == "address-unknown"
    assert failure.message.startswith("the server name no-such-host.invalid does not resolve (")
    assert "enter an IP address of the host where the server should listen (127.0.0.1" in failure.message
