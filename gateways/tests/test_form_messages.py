"""Messages of the gateway form and command that said too little or named what does not exist."""

import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gateways.forms import GatewayForm
from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway
from gateways.tests.test_form_warnings import a_free_port_below_the_ephemeral_range

pytestmark = pytest.mark.django_db


def errors_for(**overrides) -> dict:
    form = GatewayForm(form_data(**overrides))
    form.is_valid()
    return {field: " ".join(errors) for field, errors in form.errors.items()}


def create(*args: str) -> str:
    with pytest.raises(CommandError) as error:
        call_command("gateway", "create", *args, stdout=StringIO(), stderr=StringIO())
    return str(error.value)


def test_a_passphrase_typed_with_use_passphrase_unticked_is_not_dropped_silently():
    errors = errors_for(passphrase="correct horse battery")
    assert "“Use passphrase” is unticked" in errors["passphrase"]
    assert "tick “Use passphrase”" in errors["passphrase"] and "clear the passphrase" in errors["passphrase"]
    assert not Gateway.objects.exists()


def test_a_passphrase_with_use_passphrase_ticked_is_taken():
    assert errors_for(use_passphrase="on", passphrase="correct horse battery", allow_no_passphrase=None) == {}


def test_a_program_that_is_not_python_is_refused_as_the_interpreter():
    message = errors_for(python_executable="/bin/ls")["python_executable"]
    assert message.startswith("/bin/ls is not a Python interpreter")
    assert "exit code 2" in message and "/usr/bin/python3" in message


def test_the_command_refuses_a_program_that_is_not_python_naming_its_real_option():
    message = create("PyGate", "--port", "55001", "--allow-no-passphrase", "--python", "/bin/ls")
    assert "--python: /bin/ls is not a Python interpreter" in message
    assert "--python-executable" not in message
    assert not Gateway.objects.exists()


def test_the_commands_messages_name_only_options_it_has():
    message = create("Py Gate", "--port", "55001", "--allow-no-passphrase", "--options", "-c x")
    assert "NAME: “Py Gate” has characters a gateway name cannot have" in message
    assert "--options: “-c” would run something other than the gateway server" in message
    for wrong in ("--name", "--python-options"):
        assert wrong not in message


@pytest.fixture
def front(settings):
    """A real listener standing for the portal's front on the apps port (PORTAL_APPS_PORT), with the
    port after it held too, so that a suggestion must look further."""
    with socket.socket() as sock, socket.socket() as next_one:
        sock.bind(("127.0.0.1", a_free_port_below_the_ephemeral_range()))
        sock.listen()
        port = sock.getsockname()[1]
        try:
            next_one.bind(("127.0.0.1", port + 1))
            next_one.listen()
        except OSError:
            pass  # taken already
        settings.PORTAL_APPS_PORT = port
        yield port


def test_a_gateway_on_the_apps_port_is_told_it_is_the_portals_front_with_a_free_port(front):
    make_gateway(name="Other", port=front + 2)  # a definition's port is never suggested either
    form = GatewayForm(form_data(port=str(front)))
    assert form.is_valid()  # a warning: the front may listen elsewhere (PORTAL_HOST) when the gateway starts
    [warning] = form.field_warnings["port"]
    assert warning.startswith(f"Port {front} on 127.0.0.1 is the portal's own front for web applications "
                              "(PORTAL_APPS_PORT): the gateway cannot start while the portal runs. Choose another "
                              "port, e.g. ")
    assert "Stop that program" not in warning and "pid" not in warning
    suggested = int(warning.rstrip(".").rsplit(" ", 1)[1])
    assert suggested > front + 2
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", suggested))  # free


def test_its_start_is_refused_saying_the_port_is_the_portals_own(front):
    from gateways import runtime

    gateway = make_gateway(port=front)
    failure = runtime.preflight(gateway)
    assert failure is not None and failure.code == "port-in-use"
    assert failure.message.startswith(f"port {front} on 127.0.0.1 is the portal's own front for web applications "
                                      "(PORTAL_APPS_PORT), which the portal itself listens on: choose another "
                                      "port, e.g. ")
    assert "stop that process" not in failure.message


def test_a_merge_line_on_the_apps_port_is_warned_about_too(front):
    from portal.cli import CliOperator
    from portal.cpf import merge

    result = merge.merge(f"[Actions]\nCreateGateway:Name=OnFront,AllowNoPassphrase=1,Port={front}\n", CliOperator())
    assert not result.problems
    [change] = result.changes
    assert any("the portal's own front for web applications (PORTAL_APPS_PORT)" in w for w in change.warnings)


def test_the_edit_commands_messages_name_its_options_too():
    make_gateway()
    with pytest.raises(CommandError) as error:
        call_command("gateway", "edit", "PyGate", "--python", "/bin/ls", "--options", "-c x", "--port", "0",
                     stdout=StringIO(), stderr=StringIO())
    message = str(error.value)
    assert "--python: /bin/ls is not a Python interpreter" in message
    assert "--options: “-c” would run something other than the gateway server" in message
    assert "--port: Port 0 is out of range" in message
    assert "--python-executable" not in message and "--python-options" not in message
