"""Messages of the gateway form and command that said too little or named what does not exist."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gateways.forms import GatewayForm
from gateways.models import Gateway
from gateways.tests.factories import form_data

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
