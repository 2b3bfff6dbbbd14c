"""``manage.py program``: create, edit, list, show, delete, start/stop with --wait and status, in
supervisor's words; messages name the options to fix."""

from __future__ import annotations

import io
import json
import re
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conftest import wait_until
from portal.models import AuditEntry
from programs.models import Program
from programs.tests.conftest import free_port

SECRET = "cli-s3cr3t-5512"


def run(*args: str, stdin: str = "") -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("program", *args, stdout=out, stderr=err)
    finally:
        sys.stdin = old
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_create_takes_supervisors_options(tmp_path):
    out, _ = run("create", "web", "--command", "python3 -m http.server 8000", "--directory", str(tmp_path),
                 "--env", "QUEUE=emails", "--env", "MODE=fast", "--probe", "http://127.0.0.1:8000/",
                 "--restart-policy", "always", "--start-timeout", "20", "--stop-timeout", "3",
                 "--stop-signal", "SIGINT")
    program = Program.objects.get()
    assert out.startswith("Created program web: /usr/bin/python3 -m http.server 8000")
    assert program.directory == str(tmp_path) and program.environment == {"QUEUE": "emails", "MODE": "fast"}
    assert (program.probe, program.probe_target) == ("http", "http://127.0.0.1:8000/")
    assert (program.restart_policy, program.init_timeout, program.stop_timeout, program.stop_signal) == \
        ("always", 20, 3, "INT")
    assert AuditEntry.objects.get().actor_name.startswith("cli:")


@pytest.mark.django_db
def test_a_secret_is_read_from_standard_input_never_from_the_command_line():
    with pytest.raises(CommandError, match="--secret-env takes a NAME only, not TOKEN=…: a value on the command "
                                           "line is shown by ps"):
        run("create", "w", "--command", "sleep 9", "--secret-env", f"TOKEN={SECRET}")
    assert not Program.objects.exists()
    out, _ = run("create", "w", "--command", "sleep 9", "--secret-env", "TOKEN", stdin=f"{SECRET}\n")
    assert Program.objects.get().secret_environment == {"TOKEN": SECRET}
    shown, _ = run("show", "w", "--json")
    assert json.loads(shown)["secret_environment"] == ["TOKEN"] and SECRET not in shown + out


@pytest.mark.django_db
def test_a_bad_value_is_refused_naming_the_option_to_fix():
    with pytest.raises(CommandError) as refused:
        run("create", "w", "--command", "/no/such/program", "--probe", "tcp:127.0.0.1:99999", "--start-timeout", "0")
    message = str(refused.value)
    assert message.startswith("The program was not created:")
    assert "--command: /no/such/program does not exist on this host" in message
    assert "--probe: Port 99999 is out of range: use a port from 1 to 65535." in message
    assert "--start-timeout: 0 is out of range" in message
    with pytest.raises(CommandError, match=re.escape("--probe: “smoke:signals” is not a probe: write tcp:127.0.0.1:8000")):
        run("create", "w", "--command", "sleep 9", "--probe", "smoke:signals")


@pytest.mark.django_db
def test_edit_changes_only_what_it_is_given():
    run("create", "w", "--command", "sleep 9", "--env", "A=1", "--env", "B=2", "--secret-env", "T", stdin="x\n")
    out, _ = run("edit", "W", "--stop-signal", "hup", "--unset-env", "A", "--probe", "none")
    program = Program.objects.get()
    assert out == "Saved program w.\n"
    assert program.stop_signal == "HUP" and program.environment == {"B": "2"}
    assert program.secret_environment == {"T": "x"} and program.command.endswith("sleep 9")


@pytest.mark.django_db
def test_list_show_and_delete():
    out, _ = run("list")
    assert out.startswith("No programs are defined. Create one with `manage.py program create NAME --command")
    run("create", "job", "--command", "sleep 9")
    out, _ = run("list")
    assert out.splitlines()[0].split() == ["NAME", "STATE", "COMMAND"] and "job" in out.splitlines()[1]
    assert json.loads(run("list", "--json")[0])[0]["start_timeout"] == 1
    with pytest.raises(CommandError, match=re.escape("There is no program named 'nope': `manage.py program list`")):
        run("show", "nope")
    assert run("delete", "job")[0] == "Deleted program job.\n"
    assert not Program.objects.exists()


@pytest.mark.django_db
def test_a_viewer_may_look_but_not_create(make_user):
    from portal.roles import VIEWER

    make_user("vic", VIEWER)
    with pytest.raises(CommandError, match="Only an Administrator may create program definitions"):
        run("--user", "vic", "create", "w", "--command", "sleep 9")


@pytest.mark.worker
def test_start_wait_status_and_stop_wait(program_processes):
    port = free_port()
    run("create", "web", "--command", f"/usr/bin/python3 -m http.server {port} --bind 127.0.0.1",
        "--probe", f"tcp:127.0.0.1:{port}", "--start-timeout", "20")
    out, _ = run("start", "web", "--wait")
    assert out.startswith("web is running (pid ") and "ready in" in out
    status = json.loads(run("status", "web", "--json")[0])
    assert status["state"] == "running" and status["probe"] == f"tcp 127.0.0.1:{port}"
    assert status["command"] == f"/usr/bin/python3 -m http.server {port} --bind 127.0.0.1"
    with pytest.raises(CommandError, match=r"web is running: stop web first, then change stop timeout\..*Or add "
                                           r"--restart"):
        run("edit", "web", "--stop-timeout", "4")
    pid = Program.objects.get().pid
    out, _ = run("edit", "web", "--stop-timeout", "4", "--restart")
    program = Program.objects.get()
    assert program.stop_timeout == 4 and program.requested == "restart"
    wait_until(lambda: Program.objects.filter(state="running", intent="").exclude(pid=pid).exists(), timeout=20)
    out, _ = run("stop", "web", "--wait")
    assert out == "web is stopped.\n"
