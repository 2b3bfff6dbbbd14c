"""ProgramForm: every refusal says what is wrong and how to fix it; the command's program is saved as a
full path; secret values are kept, never shown."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from portal import paths
from programs import runtime
from programs.forms import ProgramForm
from programs.models import Program
from programs.tests.conftest import form_data, make_program

pytestmark = pytest.mark.django_db


def errors(**overrides: str) -> dict[str, list[str]]:
    form = ProgramForm(form_data(**overrides))
    assert not form.is_valid()
    return form.errors


def test_a_name_on_path_is_saved_as_its_full_path():
    program = make_program(command="sleep 30")
    assert program.command == f"{shutil.which('sleep', path=runtime.DEFAULT_PATH)} 30"
    assert program.command.startswith("/")


def test_the_rest_of_the_command_is_kept_as_written():
    program = make_program(command="/usr/bin/python3 -c 'print(\"a b\")'  -u")
    assert program.command == "/usr/bin/python3 -c 'print(\"a b\")'  -u"
    assert runtime.split_command(program.command) == ["/usr/bin/python3", "-c", 'print("a b")', "-u"]


def test_a_name_is_looked_up_on_the_programs_own_path(tmp_path):
    tool = tmp_path / "mytool"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    program = make_program(command="mytool --once", environment=f"PATH={tmp_path}:/usr/bin")
    assert program.command == f"{tool} --once"


@pytest.mark.parametrize("command, message", [
    ("/no/such/program --flag", "/no/such/program does not exist on this host: install it, or give the full path"),
    ("no-such-program-anywhere", "“no-such-program-anywhere” is not found on PATH"),
    ("./run.sh", "“./run.sh” is a relative path: give the program's full path"),
    ("/usr/bin/python3 -c 'print(1)", "The command cannot be read as shell words (no closing quotation): "
                                      "close the quote, or escape it with a backslash."),
    ("/tmp", "/tmp is a folder, not a program"),
    ("", "A command is required: the program and its arguments"),
])
def test_a_command_that_cannot_run_is_refused_with_its_fix(command, message):
    assert message in " ".join(errors(command=command)["command"])


def test_a_program_that_is_not_executable_is_refused_with_the_chmod(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    if os.geteuid() == 0 and os.access(script, os.X_OK):
        pytest.skip("root may run anything")
    message = " ".join(errors(command=f"{script} --now")["command"])
    assert f"{script} is not executable: make it executable (chmod +x {script})" in message


@pytest.mark.parametrize("directory, message", [
    ("srv/worker", "Give the working directory's full path, e.g. /srv/worker, not “srv/worker”"),
    ("/no/such/folder", "The working directory /no/such/folder does not exist on this host: create it first"),
])
def test_a_working_directory_that_cannot_be_used_is_refused(directory, message):
    assert message in " ".join(errors(directory=directory)["directory"])


def test_a_working_directory_in_the_portals_private_folder_is_refused():
    message = " ".join(errors(directory=str(paths.VAR_DIR))["directory"])
    assert "the portal's private folder var/, which a program's sandbox hides" in message


@pytest.mark.parametrize("probe, target, message", [
    ("tcp", "localhost", "“localhost” is not host:port: write e.g. 127.0.0.1:8000."),
    ("tcp", "127.0.0.1:70000", "Port 70000 is out of range: use a port from 1 to 65535."),
    ("tcp", "127.0.0.1:http", "The port of “127.0.0.1:http” is not a number"),
    ("tcp", "", "A tcp probe needs a target, e.g. 127.0.0.1:8000."),
    ("http", "ftp://127.0.0.1/", "“ftp://127.0.0.1/” is not an http:// URL: write e.g. http://127.0.0.1:8000/health"),
    ("http", "http://127.0.0.1:99999/", "out of range: use a port from 1 to 65535"),
    ("unix", "run/app.sock", "“run/app.sock” is not a full path: write the socket's full path"),
    ("unix", "/" + "s" * 120, "a unix socket's path has at most 107 bytes"),
    ("", "127.0.0.1:8000", "A probe target is given without a probe: choose the probe"),
])
def test_a_probe_target_that_does_not_parse_is_refused_with_an_example(probe, target, message):
    assert message.lower() in " ".join(errors(probe=probe, probe_target=target)["probe_target"]).lower()


def test_a_probe_and_its_target_are_saved():
    program = make_program(probe="tcp", probe_target=" [::1]:8000 ")
    assert (program.probe, program.probe_target) == ("tcp", "[::1]:8000")
    assert runtime.parse_probe(program.probe, program.probe_target) == {"kind": "tcp", "host": "::1", "port": 8000}


@pytest.mark.parametrize("field, value, message", [
    ("environment", "QUEUE", "Line 1 (“QUEUE”) has no “=”: write one variable per line as NAME=value."),
    ("environment", "1QUEUE=x", "“1QUEUE” is not a variable name"),
    ("secret_environment", "TOKEN", "Line 1 has no “=”: write one variable per line as NAME=value."),
    ("secret_environment", "TOKEN=", "TOKEN has no value: write TOKEN=value, or remove the line."),
])
def test_an_environment_line_that_cannot_be_read_is_refused(field, value, message):
    assert message in " ".join(errors(**{field: value})[field])


def test_a_secret_line_without_a_name_is_not_quoted_back():
    assert "s3cr3t-value" not in " ".join(errors(secret_environment="s3cr3t-value")["secret_environment"])


def test_a_variable_both_plain_and_secret_is_refused():
    message = " ".join(errors(environment="TOKEN=a", secret_environment="TOKEN=b")["secret_environment"])
    assert "TOKEN is given as a plain and as a secret variable: keep it in one of the two." in message


@pytest.mark.parametrize("field, value, message", [
    ("init_timeout", "0", "0 is out of range: enter a whole number of seconds from 1 to 300."),
    ("stop_timeout", "301", "301 is out of range: enter a whole number of seconds from 1 to 300."),
    ("init_timeout", "soon", "Enter a whole number of seconds from 1 to 300."),
])
def test_a_timeout_out_of_range_is_refused(field, value, message):
    assert message in " ".join(errors(**{field: value})[field])


def test_the_defaults_are_supervisors():
    program = make_program(init_timeout=None, stop_timeout=None, restart_policy=None, stop_signal=None)
    assert (program.init_timeout, program.stop_timeout, program.restart_policy, program.stop_signal) == \
        (1, 10, "on-failure", "TERM")


@pytest.mark.parametrize("name, message", [
    ("my worker", "“my worker” has characters a program name cannot have: use only letters, digits and _ - ."),
    ("..", "“..” cannot be a program name"),
    ("", "A name is required: letters, digits and _ - ., e.g. queue-worker."),
])
def test_a_bad_name_is_refused(name, message):
    assert message in " ".join(errors(name=name)["name"])


def test_names_are_unique_regardless_of_case():
    make_program(name="Worker")
    assert "A program named Worker already exists (names are unique regardless of case)" in \
        " ".join(errors(name="worker")["name"])


def test_root_needs_the_box_ticked_as_for_every_kind():
    assert "tick \"Allow running as root\"" in " ".join(errors(run_as="root")["run_as"])
    assert "applies only when Run as is root" in " ".join(errors(allow_root="on")["allow_root"])


def test_a_secret_value_is_kept_by_name_and_never_shown_again():
    program = make_program(secret_environment="TOKEN=s3cr3t-value")
    form = ProgramForm(instance=program)
    assert form.initial["secret_environment"] == "TOKEN="
    assert "s3cr3t-value" not in str(form["secret_environment"])
    data = {**form_data(), "secret_environment": "TOKEN=", "environment": "A=1"}
    edit = ProgramForm(data, instance=program)
    assert edit.is_valid(), edit.errors
    assert edit.save().secret_environment == {"TOKEN": "s3cr3t-value"}


def test_the_name_cannot_change_once_saved():
    program = make_program()
    form = ProgramForm({**form_data(), "name": "other"}, instance=program)
    assert form.is_valid(), form.errors
    assert form.save().name == "worker"
    assert Program.objects.get().name == "worker"


def test_a_log_file_outside_the_log_folders_is_refused(tmp_path: Path):
    message = " ".join(errors(log_file=str(tmp_path / "w.log"))["log_file"])
    assert "outside the log folders" in message
