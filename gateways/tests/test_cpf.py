"""Merging gateways: CreateGateway, ModifyGateway and DeleteGateway through the form and the service.

All or nothing, the preview, the history, the passphrase file, running gateways, and the
round trip export → merge into an empty portal → export.
"""

from __future__ import annotations

import os
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from portal.cli import CliOperator
from portal.cpf import merge
from portal.models import AuditEntry
from portal.process.states import RUNNING

pytestmark = pytest.mark.django_db

FILE = """; two gateways
[Actions]
CreateGateway:Name=PyGate,AllowNoPassphrase=1,Port=25001,PythonOptions="-X dev",RestartPolicy=always
CreateGateway:Name=Second,AllowNoPassphrase=1,Server=localhost,Port=25002,InitTimeout=9
"""


def apply(text: str, user=None, **options):  # type: ignore[no-untyped-def]
    return merge.merge(text, user or CliOperator(), apply=True, **options)


def preview(text: str, user=None, **options):  # type: ignore[no-untyped-def]
    return merge.merge(text, user or CliOperator(), apply=False, **options)


def state() -> list[tuple]:
    return list(Gateway.objects.order_by("name").values_list(
        "name", "server", "port", "python_options", "restart_policy", "init_timeout", "use_passphrase",
        "passphrase_verifier"))


def test_a_merge_creates_through_the_form_and_a_second_merge_changes_nothing(administrator):
    first = apply(FILE, administrator)
    assert first.problems == [] and first.applied
    assert first.counts == {"created": 2, "modified": 0, "deleted": 0, "unchanged": 0}
    pygate = Gateway.objects.get(name="PyGate")
    assert (pygate.port, pygate.python_options, pygate.restart_policy) == (25001, "-X dev", "always")
    # The form normalised the server as it does on the page, and filled the defaults.
    second = Gateway.objects.get(name="Second")
    assert (second.server, second.init_timeout, second.stop_timeout) == ("localhost", 9, 5)
    assert pygate.created_by == administrator
    history = AuditEntry.objects.filter(action="created").order_by("id")
    assert [(e.object_name, e.actor_name, e.actor) for e in history] == [
        ("PyGate", "ada (cpf merge)", administrator), ("Second", "ada (cpf merge)", administrator)]
    before = state()
    again = apply(FILE, administrator)
    assert again.counts == {"created": 0, "modified": 0, "deleted": 0, "unchanged": 2}
    assert state() == before and AuditEntry.objects.count() == 2


def test_the_preview_lists_created_modified_field_by_field_deleted_and_unchanged_and_changes_nothing():
    make_gateway(name="PyGate", port=25001)
    make_gateway(name="Old", port=25003)
    make_gateway(name="Same", port=25004)
    before = state()
    result = preview("[Actions]\nModifyGateway:Name=pygate,Port=25011,StopTimeout=7\nDeleteGateway:Name=Old\n"
                     "CreateGateway:Name=Same,AllowNoPassphrase=1,Port=25004\nCreateGateway:Name=Fresh,AllowNoPassphrase=1,Port=25005\n"
                     "DeleteGateway:Name=NeverWas\n")
    assert result.problems == [] and not result.applied
    assert state() == before and AuditEntry.objects.count() == 0
    (modified,) = result.of("modified")
    assert (modified.name, modified.line) == ("PyGate", 2)
    assert modified.fields == [("Port", "25001", "25011"), ("StopTimeout", "5", "7")]
    assert [c.name for c in result.of("deleted")] == ["Old"]
    assert [(c.name, c.note) for c in result.of("unchanged")] == [("Same", ""), ("NeverWas", "no gateway of that name")]
    (created,) = result.of("created")
    assert ("Port", "", "25005") in created.fields and ("Name", "", "Fresh") in created.fields


def test_a_file_with_one_bad_line_changes_nothing_and_names_the_line_key_and_fix():
    make_gateway(name="Keep", port=25009)
    before = state()
    text = ("[Actions]\nCreateGateway:Name=A,AllowNoPassphrase=1,Port=25001\nDeleteGateway:Name=Keep\n"
            "CreateGateway:Name=B,AllowNoPassphrase=1,Port=25002,Server=not a host\nCreateGateway:Name=C,AllowNoPassphrase=1,Port=25003\n")
    result = apply(text)
    assert not result.applied and state() == before and AuditEntry.objects.count() == 0
    (problem,) = result.problems
    assert (problem.line, problem.key) == (4, "Server")
    assert "is neither an IP address nor a host name: use e.g. 127.0.0.1" in problem.message


def test_a_line_checks_against_the_lines_above_it():
    # Two new gateways on one port: the form refuses the second, as two saves on the page would.
    result = apply("[Actions]\nCreateGateway:Name=A,AllowNoPassphrase=1,Port=25001\nCreateGateway:Name=B,AllowNoPassphrase=1,Port=25001\n")
    assert [(p.line, p.key) for p in result.problems] == [(3, "Port")]
    assert "already used by gateway A" in result.problems[0].message
    assert Gateway.objects.count() == 0


def test_a_definition_named_twice_in_a_file_is_refused():
    result = preview("[Actions]\nCreateGateway:Name=A,AllowNoPassphrase=1,Port=25001\nModifyGateway:Name=a,Port=25002\n")
    assert [(p.line, p.key) for p in result.problems] == [(3, "Name")]
    assert "already on line 2" in result.problems[0].message


def test_modify_of_a_missing_gateway_says_to_create_it():
    result = preview("[Actions]\nModifyGateway:Name=Ghost,Port=25001\n")
    assert result.problems[0].message == "there is no gateway named Ghost: create it with CreateGateway."


@pytest.mark.parametrize(("key", "value", "words"), [
    ("Port", "x", "not a whole number"),
    ("PythonExecutable", "python3", "Give the full path of the Python executable"),
    ("PythonOptions", "-c print(1)", "would run something other than the gateway server"),
    ("LogFile", "relative.log", "Give the log file's full path"),
    ("Name", "bad name", "has characters a gateway name cannot have"),
    ("RestartPolicy", "maybe", "write one of never, on-failure, always"),
    ("Server", "0.0.0.0", "passphrase"),
])
def test_a_malformed_value_is_refused_with_the_forms_message_and_its_key(key, value, words):
    values = {"Name": "PyGate", "Port": "25001", "AllowNoPassphrase": "1", key: value}
    line = "CreateGateway:" + ",".join(f"{k}={v}" for k, v in values.items())
    result = apply(f"[Actions]\n{line}\n")
    assert Gateway.objects.count() == 0
    assert any(p.line == 2 and words in p.message for p in result.problems), result.problems
    expected_key = "UsePassphrase" if key == "Server" else key
    assert expected_key in {p.key for p in result.problems}


def test_the_passphrase_comes_from_a_file_and_never_shows(tmp_path):
    secret = "correct horse battery staple"
    path = tmp_path / "pass.txt"
    path.write_text(secret + "\nsecond line ignored\n")
    text = f"[Actions]\nCreateGateway:Name=Locked,Port=25001,PassphraseFile={path}\n"
    first = apply(text)
    assert first.problems == []
    gateway = Gateway.objects.get(name="Locked")
    assert gateway.use_passphrase and gateway.passphrase_verifier.startswith("pbkdf2_sha256$")
    assert ("PassphraseFile", "", merge.CHANGED_SECRET) in first.of("created")[0].fields
    everything = str(first.as_dict()) + str(list(AuditEntry.objects.values()))
    assert secret not in everything and "horse" not in everything
    # The same passphrase again: nothing changes (a new verifier would have a new salt).
    verifier = gateway.passphrase_verifier
    assert apply(text).counts["unchanged"] == 1
    assert Gateway.objects.get(name="Locked").passphrase_verifier == verifier
    # Another passphrase: changed, recorded as changed without a value.
    path.write_text("another long passphrase\n")
    third = apply(text)
    assert third.of("modified")[0].fields == [("PassphraseFile", "", merge.CHANGED_SECRET)]
    assert Gateway.objects.get(name="Locked").passphrase_verifier != verifier
    assert AuditEntry.objects.filter(action="changed").get().changes == {"passphrase_verifier": {"secret": True}}


@pytest.mark.parametrize(("setup", "words"), [
    ("missing", "cannot be read by the portal's user (No such file or directory)"),
    ("folder", "is not a regular file"),
    ("fifo", "is not a regular file"),  # a pipe nobody writes to: refused at once, not waited on
    ("device", "is not a regular file"),
    ("empty", "the first line of"),
    ("short", "The passphrase is too short"),
    ("relative", "give the full path of the passphrase file"),
    ("big", "is larger than 4096 bytes"),
])
def test_a_passphrase_file_that_cannot_serve_is_refused_without_showing_its_content(tmp_path, setup, words):
    path = tmp_path / "pass.txt"
    if setup == "folder":
        path.mkdir()
    elif setup == "fifo":
        os.mkfifo(path)
    elif setup == "device":
        path = Path("/dev/zero")
    elif setup == "empty":
        path.write_text("\nsecret-on-line-two\n")
    elif setup == "short":
        path.write_text("abc\n")
    elif setup == "big":
        path.write_text("x" * 5000)
    name = "pass.txt" if setup == "relative" else str(path)
    result = apply(f"[Actions]\nCreateGateway:Name=Locked,Port=25001,PassphraseFile={name}\n")
    assert Gateway.objects.count() == 0
    (problem,) = result.problems
    assert (problem.line, problem.key) == (2, "PassphraseFile") and words in problem.message
    assert "secret-on-line-two" not in problem.message and "abc" not in problem.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file; run the suite as a normal user to check this")
def test_a_passphrase_file_the_portal_user_cannot_read_is_refused(tmp_path):
    path = tmp_path / "pass.txt"
    path.write_text("a long passphrase\n")
    path.chmod(0)
    result = apply(f"[Actions]\nCreateGateway:Name=Locked,Port=25001,PassphraseFile={path}\n")
    assert "Permission denied" in result.problems[0].message


def test_passphrase_file_with_use_passphrase_0_is_refused(tmp_path):
    path = tmp_path / "pass.txt"
    path.write_text("a long passphrase\n")
    result = apply(f"[Actions]\nCreateGateway:Name=L,Port=25001,UsePassphrase=0,PassphraseFile={path}\n")
    assert result.problems[0].key == "PassphraseFile" and "remove one of them" in result.problems[0].message


def test_a_running_gateways_runtime_fields_are_refused_without_restart():
    make_gateway(name="Live", port=25001, state=RUNNING, pid=os.getpid())
    result = apply("[Actions]\nModifyGateway:Name=Live,Port=25002\n")
    (problem,) = result.problems
    assert (problem.line, problem.key) == (2, "Port")
    assert "Live is running: stop it first, or merge with restart (--restart" in problem.message
    assert Gateway.objects.get(name="Live").port == 25001
    # The same merge as a preview with restart says it will stop and start it.
    planned = preview("[Actions]\nModifyGateway:Name=Live,Port=25002\n", restart=True)
    assert planned.problems == [] and planned.of("modified")[0].restart


def test_deleting_a_running_gateway_is_refused_as_on_the_page():
    make_gateway(name="Live", port=25001, state=RUNNING, pid=os.getpid())
    result = apply("[Actions]\nDeleteGateway:Name=Live\n")
    assert "Live is running: stop Live first, then delete it." in result.problems[0].message
    assert Gateway.objects.filter(name="Live").exists()


def test_deleting_records_history_with_the_merge_as_source():
    make_gateway(name="Old", port=25001)
    result = apply("[Actions]\nDeleteGateway:Name=Old\n")
    assert result.counts["deleted"] == 1 and not Gateway.objects.exists()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_name) == ("deleted", "Old") and entry.actor_name.endswith("(cpf merge)")


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("cpf", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_export_then_merge_into_an_empty_portal_then_export_gives_the_same_file(tmp_path):
    make_gateway(name="PyGate", port=25001, python_options='-X dev -W "error,ignore"', restart_policy="always")
    make_gateway(name="b-second", server="localhost", port=25002, log_file="", stop_timeout=30)
    make_gateway(name="Locked", port=25003, use_passphrase=True, passphrase_verifier="pbkdf2_sha256$1$c2FsdA==$x")
    exported = run_command("export", "--gateways")
    assert "; Locked uses a passphrase, which is never exported" in exported
    assert 'PythonOptions="-X dev -W ""error,ignore"""' in exported
    Gateway.objects.all().delete()
    # The passphrase file is added by hand, as the comment says.
    path = tmp_path / "pass.txt"
    path.write_text("a long passphrase\n")
    file = tmp_path / "export.cpf"
    file.write_text(exported.replace("Name=Locked,", f"Name=Locked,PassphraseFile={path},"))
    out = run_command("merge", str(file))
    assert "3 created" in out
    assert run_command("export", "--gateways") == exported


def test_the_command_exits_1_naming_the_file_line_and_key_and_changes_nothing(tmp_path):
    file = tmp_path / "bad.cpf"
    file.write_text("[Actions]\r\nCreateGateway:Name=A,AllowNoPassphrase=1,Port=25001\r\nCreateGateway:Name=B,AllowNoPassphrase=1,Port=99999\r\n")
    with pytest.raises(CommandError) as error:
        run_command("merge", str(file))
    assert f"{file}: line 3, Port: 99999 is out of range: write a number from 1 to 65535." in str(error.value)
    assert "Nothing was changed" in str(error.value) and Gateway.objects.count() == 0


def test_the_command_refuses_a_file_larger_than_the_merge_page_takes_before_reading_it(tmp_path, administrator):
    # The limit and the words of the Merge page and POST /api/cpf/merge. Before, 50 MB took over 120 s
    # and 1.15 GB of memory; this file is comments only, which the command used to merge as "0 created".
    from portal.cpf.parser import MAX_FILE_BYTES

    file = tmp_path / "big.cpf"
    line = "; " + "x" * 1021 + "\n"
    file.write_text(FILE + line * (MAX_FILE_BYTES // len(line) + 1))
    size = file.stat().st_size
    with pytest.raises(CommandError) as error:
        run_command("merge", str(file))
    assert str(error.value) == (f"{file} has {size:,} bytes; a merge file has at most {MAX_FILE_BYTES:,} bytes "
                                "(4 MiB): split it into several files.")
    assert Gateway.objects.count() == 0
    page = Client()
    page.force_login(administrator)
    with file.open("rb") as upload:
        response = page.post("/cpf/merge/", {"file": upload, "action": "preview"})
    assert f"big.cpf has {size:,} bytes; a merge file has at most {MAX_FILE_BYTES:,} bytes (4 MiB): split it into " \
           "several files." in response.content.decode()
    # Exactly at the limit it is read and merged.
    file.write_bytes(file.read_bytes()[:MAX_FILE_BYTES])
    assert "Merged" in run_command("merge", str(file))


def test_the_commands_dry_run_changes_nothing(tmp_path):
    file = tmp_path / "ok.cpf"
    file.write_text(FILE)
    out = run_command("merge", str(file), "--dry-run")
    assert "Create gateway PyGate (line 3)" in out and "Dry run: nothing was changed" in out
    assert Gateway.objects.count() == 0


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_the_command_refuses_a_viewer_and_an_operator(tmp_path, role, viewer, operator):
    file = tmp_path / "ok.cpf"
    file.write_text(FILE)
    user = {"viewer": viewer, "operator": operator}[role]
    for args in (["merge", str(file)], ["merge", str(file), "--dry-run"]):
        with pytest.raises(CommandError) as error:
            run_command("--user", user.username, *args)
        assert "Only an Administrator may merge definitions" in str(error.value)
    assert Gateway.objects.count() == 0


def test_a_merge_does_not_probe_whether_each_port_is_held_now():
    # One probe lists every socket of the host (~50 ms); a thousand definitions would take a
    # minute. The start says who holds a port; the page's form still warns (test_form_warnings).
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = apply(f"[Actions]\nCreateGateway:Name=Held,AllowNoPassphrase=1,Port={port}\n")
    assert result.problems == []
    assert not any("in use now" in w for w in result.of("created")[0].warnings)


def test_the_portals_own_files_are_no_passphrase_file():
    from django.conf import settings

    from portal import paths

    secret = paths.VAR_DIR / "secret_key"
    if not secret.exists():
        secret.write_text("x" * 50 + "\n")
    database = settings.DATABASES["default"]
    own = [secret, paths.VAR_DIR / "redis"]
    if database["ENGINE"].endswith("sqlite3"):
        own.append(database["NAME"])
    for path in own:
        result = apply(f"[Actions]\nCreateGateway:Name=Locked,Port=25001,PassphraseFile={path}\n")
        (problem,) = result.problems
        assert problem.key == "PassphraseFile" and "is one of the portal's own files" in problem.message
    assert Gateway.objects.count() == 0


def test_a_line_that_reads_as_the_definition_is_already_as_asked_and_another_spelling_too():
    make_gateway(name="PyGate", server="localhost", port=25001, python_options="-X dev")
    same = apply("[Actions]\nCreateGateway:Name=PyGate,AllowNoPassphrase=1,Server=localhost,Port=25001,PythonOptions=-X dev\n")
    assert same.counts["unchanged"] == 1
    # Written another way: the form normalises it to what is stored, so nothing changes either.
    other = apply("[Actions]\nModifyGateway:Name=pygate,Server=LOCALHOST,Port=025001\n")
    assert other.problems == [] and other.counts["unchanged"] == 1
    assert AuditEntry.objects.count() == 0


def test_the_command_reads_standard_input_and_answers_json(monkeypatch):
    import io
    import json
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(FILE.encode())))
    answer = json.loads(run_command("merge", "-", "--dry-run", "--json"))
    assert answer["dry_run"] is True and answer["applied"] is False
    assert [c["name"] for c in answer["created"]] == ["PyGate", "Second"]
    assert Gateway.objects.count() == 0


def test_a_file_with_syntax_errors_lists_its_other_problems_in_the_same_pass():
    make_gateway(name="Keep", port=25009)
    before = state()
    text = ("[Actions]\n"
            "CreateGateway:Name=A,AllowNoPassphrase=1,Port=99999\n"        # 2: a bad value (the form's)
            "CreateGateway:Name=B,,Port=25002\n"                           # 3: a syntax error
            "ModifyGateway:Name=Nobody,Port=25004\n"                       # 4: no such gateway
            "CreateGateway:Name=C,AllowNoPassphrase=1,Nope=1,Port=25005\n"  # 5: an unknown key
            "CreateGateway:Name=D,AllowNoPassphrase=1,Port=25006\n")       # 6: fine
    for result in (apply(text), preview(text)):
        assert not result.applied and state() == before and AuditEntry.objects.count() == 0
        lines = [(p.line, p.key) for p in result.problems]
        assert lines == [(2, "Port"), (3, ""), (4, "Name"), (5, "Nope")], result.problems
        assert "out of range" in result.problems[0].message
        assert "there is no gateway named Nobody" in result.problems[2].message
        assert not Gateway.objects.filter(name__in=["A", "C", "D"]).exists()


def test_a_gateway_with_the_portals_interpreter_is_exported_without_a_path_and_runs_with_the_portals(tmp_path):
    # The form's blank Python executable is kept blank: an export names no interpreter of this host.
    from gateways.forms import GatewayForm
    from gateways.runtime import build_spec

    form = GatewayForm({"name": "Portable", "server": "127.0.0.1", "port": "25009", "allow_no_passphrase": "on",
                        "python_executable": "", "connection_timeout": "5", "init_timeout": "5",
                        "restart_policy": "on-failure", "stop_timeout": "5"}, check_ports=False)
    assert form.is_valid(), form.errors
    gateway = form.save()
    assert gateway.python_executable == "" and gateway.interpreter == sys.executable
    assert build_spec(gateway).argv[0] == sys.executable
    exported = run_command("export", "--gateways")
    assert "PythonExecutable=," in exported and sys.executable not in exported
    # Merged into an empty portal (another host's, as far as the file knows): blank again.
    Gateway.objects.all().delete()
    file = tmp_path / "export.cpf"
    file.write_text(exported)
    run_command("merge", str(file))
    assert Gateway.objects.get().python_executable == ""
    page = Client()
    from django.contrib.auth.models import User

    page.force_login(User.objects.create_superuser("root-admin"))
    body = page.get("/gateways/Portable/").content.decode().replace("<wbr>", "")
    assert "The portal's own" in body and sys.executable in body
