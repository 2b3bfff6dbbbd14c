"""Every refusal says what is wrong and how to fix it."""

import os
import stat

import pytest

from gateways.forms import GatewayForm
from gateways.tests.factories import form_data, make_gateway
from portal import paths

pytestmark = pytest.mark.django_db


def errors_for(**overrides) -> dict:
    form = GatewayForm(form_data(**overrides))
    form.is_valid()
    return {field: " ".join(errors) for field, errors in form.errors.items()}


def test_a_valid_definition_passes():
    assert errors_for() == {}


@pytest.mark.parametrize("name", ["Py Gate", "py/gate", "gate!", "ü"])
def test_a_name_with_other_characters_is_refused(name):
    assert "use only letters, digits and _ - . %" in errors_for(name=name)["name"]


@pytest.mark.parametrize("name", ["Py_Gate-1.0", "a%b", "X"])
def test_a_name_of_allowed_characters_passes(name):
    assert "name" not in errors_for(name=name)


@pytest.mark.parametrize("name", [".", ".."])
def test_a_name_of_dots_only_is_refused_everywhere(name, admin_client_, tmp_path):
    # Browsers and HTTP clients remove "." and ".." segments from an address: /gateways/../ is /,
    # so such a gateway's pages and API could never be reached.
    expected = f"“{name}” cannot be a gateway name"
    assert expected in errors_for(name=name)["name"]
    response = admin_client_.post("/gateways/new/", form_data(name=name))
    assert expected in response.content.decode()
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as error:
        call_command("gateway", "create", name, "--port", "55001")
    assert expected in str(error.value)
    response = admin_client_.post("/cpf/merge/", {"text": f"[Actions]\nCreateGateway:Name={name},Port=55001\n",
                                                 "action": "apply"})
    assert expected in response.content.decode()
    from gateways.models import Gateway

    assert not Gateway.objects.exists()


def test_names_are_unique_regardless_of_case():
    make_gateway(name="PyGate")
    assert "A gateway named PyGate already exists" in errors_for(name="pygate", port="1")["name"]


def test_names_that_would_shadow_pages_are_refused():
    assert "reserved" in errors_for(name="New")["name"]


@pytest.mark.parametrize("server", ["exa mple", "-bad.example", "999.1.1.1"])
def test_a_server_that_is_neither_address_nor_host_name_is_refused(server):
    assert "neither an IP address nor a host name" in errors_for(server=server)["server"]


def test_an_overlong_host_name_says_the_limit():
    assert "at most 253 characters (this one has 300)" in errors_for(server="a" * 300)["server"]


@pytest.mark.parametrize("server", ["127.0.0.1", "::1", "0.0.0.0", "gw1.example.com", "localhost"])
def test_addresses_and_host_names_pass(server):
    assert "server" not in errors_for(server=server)


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_a_port_out_of_range_is_refused(port):
    assert "port" in errors_for(port=port)


def test_a_port_that_is_not_a_number_says_so():
    assert "whole number from 1 to 65535" in errors_for(port="abc")["port"]


def test_the_same_port_on_another_server_is_allowed():
    make_gateway(server="10.0.0.5")
    assert "port" not in errors_for(server="10.0.0.6")


def test_a_wildcard_clashes_with_a_local_address_on_the_same_port():
    make_gateway(server="127.0.0.1")
    assert "already used by gateway PyGate" in errors_for(name="Wide", server="0.0.0.0")["port"]


def test_a_missing_python_is_refused_with_the_path():
    message = errors_for(python_executable="/no/such/python3")["python_executable"]
    assert "/no/such/python3 does not exist" in message and "Python 3.9 or newer" in message


def test_a_python_that_is_not_executable_is_refused(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(stat.S_IRUSR | stat.S_IWUSR)
    if os.geteuid() == 0:
        # root may execute anything with an x bit; without any x bit it cannot
        pass
    assert "is not an executable file" in errors_for(python_executable=str(fake))["python_executable"]


def test_a_relative_python_path_is_refused():
    assert "full path" in errors_for(python_executable="python3")["python_executable"]


def test_options_that_are_not_shell_words_are_refused():
    message = errors_for(python_options='-X "dev')["python_options"]
    assert "cannot be read as shell words" in message and "close the quote" in message


def test_a_log_file_in_a_missing_folder_is_refused():
    missing = paths.LOG_DIR / "no" / "such"
    message = errors_for(log_file=f"{missing}/gw.log")["log_file"]
    assert f"the folder {missing} does not exist" in message


def test_a_log_file_that_is_a_folder_is_refused():
    paths.LOG_DIR.mkdir(exist_ok=True)
    assert "is a folder" in errors_for(log_file=str(paths.LOG_DIR))["log_file"]


def test_a_log_file_in_a_writable_log_folder_passes():
    paths.LOG_DIR.mkdir(exist_ok=True)
    assert "log_file" not in errors_for(log_file=str(paths.LOG_DIR / "gw-new.log"))


def test_timeouts_stay_between_2_and_300_seconds():
    assert "init_timeout" in errors_for(init_timeout="1")
    assert "connection_timeout" in errors_for(connection_timeout="301")
    assert errors_for(init_timeout="2", connection_timeout="300") == {}


def test_use_passphrase_without_one_asks_for_it():
    assert "Enter a passphrase" in errors_for(use_passphrase="on")["passphrase"]


def test_a_short_passphrase_is_refused():
    assert "at least 8 characters" in errors_for(use_passphrase="on", passphrase="short")["passphrase"]
