"""Programs in merge files: CreateProgram, ModifyProgram, DeleteProgram through the form and the service,
the export (?kind=programs) with no secret in it, and the round trip export → merge → export."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from portal.cli import CliOperator
from portal.cpf import merge
from portal.models import AuditEntry
from programs.models import Program
from programs.tests.conftest import make_program

pytestmark = pytest.mark.django_db
SECRET = "merge-s3cr3t-0193"


def apply(text: str, user=None):  # type: ignore[no-untyped-def]
    return merge.merge(text, user or CliOperator(), apply=True)


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("cpf", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_modify_and_delete_through_the_form(tmp_path):
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET + "\n")
    result = apply(f"""[Actions]
CreateProgram:Name=worker,Command="python3 -m http.server 8000",Directory={tmp_path},Env.QUEUE=emails,SecretEnvFile.TOKEN={secret_file},Probe=tcp:127.0.0.1:8000,RestartPolicy=always,StartTimeout=15,StopSignal=INT,StopTimeout=3
CreateProgram:Name=sleeper,Command=sleep 60
""")
    assert result.problems == [] and result.counts["created"] == 2
    worker = Program.objects.get(name="worker")
    assert worker.command == "/usr/bin/python3 -m http.server 8000" and worker.directory == str(tmp_path)
    assert worker.environment == {"QUEUE": "emails"} and worker.secret_environment == {"TOKEN": SECRET}
    assert (worker.probe, worker.probe_target, worker.restart_policy, worker.init_timeout, worker.stop_signal,
            worker.stop_timeout) == ("tcp", "127.0.0.1:8000", "always", 15, "INT", 3)
    assert Program.objects.get(name="sleeper").init_timeout == 1  # the model's default: supervisor's startsecs

    result = apply("[Actions]\nModifyProgram:Name=Worker,Probe=http://127.0.0.1:8000/health,StopSignal=SIGHUP\n")
    assert result.problems == [] and result.counts["modified"] == 1
    worker.refresh_from_db()
    assert (worker.probe, worker.probe_target, worker.stop_signal) == ("http", "http://127.0.0.1:8000/health", "HUP")
    assert worker.secret_environment == {"TOKEN": SECRET}  # not named: kept

    result = apply("[Actions]\nDeleteProgram:Name=sleeper\n")
    assert result.problems == [] and result.counts["deleted"] == 1
    assert list(Program.objects.values_list("name", flat=True)) == ["worker"]
    for entry in AuditEntry.objects.all():
        assert SECRET not in str(entry.changes)


def test_a_bad_line_names_its_key_and_changes_nothing():
    result = apply("[Actions]\nCreateProgram:Name=a,Command=sleep 9\n"
                   "CreateProgram:Name=b,Command=/no/such/program,Probe=tcp:localhost\n"
                   "CreateProgram:Name=c,Command=sleep 9,Probe=carrier-pigeon\n")
    assert not result.applied and not Program.objects.exists()
    said = " ".join(f"{p.key}: {p.message}" for p in result.problems)
    assert "Command: /no/such/program does not exist on this host" in said
    assert "Probe: “localhost” is not host:port" in said
    assert "Probe: “carrier-pigeon” is not a probe" in said


def test_the_export_never_holds_a_secret_and_merges_back_to_the_same_file(tmp_path):
    make_program(name="worker", command="sleep 30", environment="QUEUE=emails\nMODE=a,b",
                 secret_environment=f"TOKEN={SECRET}", probe="unix", probe_target="/tmp/worker.sock",
                 stop_signal="QUIT")
    make_program(name="web", command="/usr/bin/python3 -m http.server 8000", probe="http",
                 probe_target="http://127.0.0.1:8000/")
    exported = run_command("export", "--programs")
    assert SECRET not in exported
    assert "; worker has secret variables (TOKEN), which are never exported: add SecretEnvFile.NAME=" in exported
    assert "Probe=unix:/tmp/worker.sock" in exported and "Probe=http://127.0.0.1:8000/" in exported
    assert 'Env.MODE="a,b"' in exported and "StopSignal=QUIT" in exported
    Program.objects.all().delete()
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET + "\n")
    file = tmp_path / "programs.cpf"
    file.write_text(exported.replace("Name=worker,", f"Name=worker,SecretEnvFile.TOKEN={secret_file},"))
    assert "2 created" in run_command("merge", str(file))
    assert Program.objects.get(name="worker").secret_environment == {"TOKEN": SECRET}
    assert run_command("export", "--programs") == exported


def test_the_export_download_takes_kind_programs(make_user):
    from portal.roles import VIEWER

    make_program(secret_environment=f"TOKEN={SECRET}")
    client = Client()
    client.force_login(make_user("vic", VIEWER))
    response = client.get("/cpf/export/?kind=programs")
    assert response.status_code == 200
    text = response.content.decode()
    assert "CreateProgram:Name=worker,Command=" in text and "CreateGateway" not in text and SECRET not in text
