"""Programs run for real: a real worker, real keepers, real processes under their own user."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
import urllib.request
from io import StringIO
from pathlib import Path

import psutil
import pytest
from django.core.management import call_command

from conftest import wait_until
from portal.process import keeper
from processes import control
from processes.models import Activity, Run
from programs.adapter import ProgramAdapter
from programs.tests.conftest import free_port, make_program, wait_state

pytestmark = [pytest.mark.worker]

PYTHON = "/usr/bin/python3"


def script(folder: Path, name: str, code: str) -> Path:
    """A program file its own user may read (the tree is world-readable: umask 022)."""
    folder.chmod(0o755)
    path = folder / name
    path.write_text(textwrap.dedent(code))
    path.chmod(0o644)
    return path


def test_a_web_server_with_an_http_probe_runs_and_answers(program_processes, operator, tmp_path):
    port = free_port()
    program = make_program(name="web", command=f"{PYTHON} -m http.server {port} --bind 127.0.0.1",
                           probe="http", probe_target=f"http://127.0.0.1:{port}/", init_timeout="20")
    control.request(program, "start", operator)
    program = wait_state(program, {"running", "fatal", "backoff"}, timeout=30)
    assert program.state == "running", program.last_error
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        assert answer.status == 200
    run = Run.objects.of(program).get()
    assert run.outcome == "running" and run.command == f"{PYTHON} -m http.server {port} --bind 127.0.0.1"
    assert Activity.objects.of(program).filter(to_state="running").exists()
    control.request(program, "stop", operator)
    program = wait_state(program, {"stopped"})
    assert not psutil.pid_exists(run.pid) or psutil.Process(run.pid).status() == psutil.STATUS_ZOMBIE


def test_a_program_without_a_probe_runs_once_up_for_its_start_timeout(program_processes, operator):
    program = make_program(name="sleeper", command="sleep 300", init_timeout="1")
    started = time.monotonic()
    control.request(program, "start", operator)
    program = wait_state(program, {"running", "fatal"})
    assert program.state == "running", program.last_error
    assert time.monotonic() - started >= 1.0
    assert program.startup["time_to_ready"] >= 1.0
    assert psutil.Process(program.pid).cmdline() == [program.command.split()[0], "300"]
    control.request(program, "stop", operator)
    wait_state(program, {"stopped"})


def test_a_program_that_exits_at_once_fails_its_start_with_its_exit_code_and_output(
        program_processes, operator, tmp_path):
    job = script(tmp_path, "fails.py", """
        import sys
        print("cannot open the queue: connection refused", flush=True)
        sys.exit(3)
    """)
    program = make_program(name="fails", command=f"{PYTHON} {job}", restart_policy="never")
    control.request(program, "start", operator)
    program = wait_state(program, {"fatal", "running"}, timeout=20)
    assert program.state == "fatal"
    run = Run.objects.of(program).order_by("started_at").first()
    assert run.outcome == "failed" and run.exit_code == 3
    assert run.message.startswith("exited before it was ready (exit code 3); last output: cannot open the queue")
    assert "cannot open the queue: connection refused" in run.message
    assert program.startup["first_lines"] == ["cannot open the queue: connection refused"]
    # As supervisor's startretries: three failed starts in a row, then it gives up (fatal).
    assert program.last_error.startswith("gave up after 3 failed starts in a row: exited before it was ready "
                                         "(exit code 3)")
    assert Run.objects.of(program).filter(outcome="failed").count() == 3


def test_on_failure_restarts_it_after_a_kill_9(program_processes, operator):
    program = make_program(name="restarts", command="sleep 300", restart_policy="on-failure")
    control.request(program, "start", operator)
    program = wait_state(program, {"running"})
    first = program.pid
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: Activity.objects.of(program).filter(to_state="exited", pid=first).exists(), timeout=10)
    exited = Activity.objects.of(program).get(to_state="exited", pid=first)
    assert exited.signal == "SIGKILL" and exited.expected is False

    def running_again() -> bool:
        program.refresh_from_db()
        return program.state == "running" and program.pid != first

    wait_until(running_again, timeout=15)
    assert Activity.objects.of(program).filter(to_state="starting", trigger="auto-restart").exists()
    control.request(program, "stop", operator)
    wait_state(program, {"stopped"})


def test_a_stop_sends_its_stop_signal_then_kill_after_the_stop_timeout(program_processes, operator, tmp_path):
    out = tmp_path / "signals"
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # its own user writes there
    deaf = script(tmp_path, "deaf.py", f"""
        import signal, time
        def note(signum, frame):
            open({str(out / 'got')!r}, "a").write(signal.Signals(signum).name + "\\n")
        signal.signal(signal.SIGUSR1, note)  # noted, and it goes on: only SIGKILL ends it
        print("up", flush=True)
        while True:
            time.sleep(0.05)
    """)
    program = make_program(name="deaf", command=f"{PYTHON} {deaf}", stop_signal="USR1", stop_timeout="1")
    control.request(program, "start", operator)
    program = wait_state(program, {"running"})
    started = time.monotonic()
    control.request(program, "stop", operator)
    program = wait_state(program, {"stopped"})
    assert 1.0 <= time.monotonic() - started < 8
    assert (out / "got").read_text() == "SIGUSR1\n"
    stopping = Activity.objects.of(program).filter(to_state="stopping").latest("id")
    assert stopping.message.startswith("SIGUSR1 to process group")
    stopped = Activity.objects.of(program).filter(to_state="stopped").latest("id")
    assert stopped.signal == "SIGKILL" and "did not stop within 1 s of SIGUSR1; killed" in stopped.message


def test_its_environment_reaches_it_and_the_secret_appears_nowhere_else(program_processes, operator, tmp_path):
    out = tmp_path / "env"
    out.mkdir()
    out.chmod(0o777)
    secret = "s3cr3t-Zq81-value"
    dump = script(tmp_path, "dump.py", f"""
        import json, os, time
        json.dump(dict(os.environ), open({str(out / 'env.json')!r}, "w"))
        print("environment written", flush=True)
        time.sleep(300)
    """)
    program = make_program(name="envdump", command=f"{PYTHON} {dump}", environment="QUEUE=emails",
                           secret_environment=f"API_TOKEN={secret}")
    control.request(program, "start", operator)
    program = wait_state(program, {"running"})
    wait_until(lambda: (out / "env.json").exists() and (out / "env.json").stat().st_size, timeout=10)
    env = json.loads((out / "env.json").read_text())
    assert env["QUEUE"] == "emails" and env["API_TOKEN"] == secret
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    # Nothing of the portal's own environment: its settings and secrets stay with it.
    assert not {k for k in env if k.startswith(("PORTAL_", "DJANGO_", "REDIS", "CELERY"))}
    assert env["HOME"] == str(ProgramAdapter().home(program))
    # The secret is in no command line, activity row, run, status or log.
    assert secret not in " ".join(psutil.Process(program.pid).cmdline())
    assert secret not in Path(f"/proc/{program.pid}/cmdline").read_bytes().decode()
    for row in Activity.objects.of(program):
        assert secret not in json.dumps(row.as_row())
    for run in Run.objects.of(program):
        assert secret not in run.command + run.message
    assert "API_TOKEN=****" in Run.objects.of(program).get().command
    status = StringIO()
    call_command("program", "status", "envdump", "--json", stdout=status)
    assert secret not in status.getvalue() and json.loads(status.getvalue())["state"] == "running"
    assert secret not in json.dumps(program.startup)
    assert secret not in (ProgramAdapter().run_dir(program) / keeper.STATUS_FILE).read_text()
    control.request(program, "stop", operator)
    wait_state(program, {"stopped"})


@pytest.mark.skipif(os.geteuid() != 0, reason="only a portal running as root runs programs as other users")
def test_it_runs_as_a_user_of_its_own_not_the_portals(program_processes, operator):
    program = make_program(name="ownuser", command="sleep 300")
    control.request(program, "start", operator)
    program = wait_state(program, {"running"})
    uids = psutil.Process(program.pid).uids()
    assert uids.real != 0 and uids.effective != 0
    assert uids.real == ProgramAdapter().account(program).uid
    assert program.runs_as.startswith("its own user (uid ")
    control.request(program, "stop", operator)
    wait_state(program, {"stopped"})


@pytest.mark.skipif(os.geteuid() != 0, reason="only a portal running as root runs programs as other users")
def test_a_program_its_user_may_not_run_is_refused_before_the_start(program_processes, operator, tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    tool = closed / "tool"
    tool.write_text("#!/bin/sh\nsleep 300\n")
    tool.chmod(0o755)
    program = make_program(name="closed", command=str(tool))
    control.request(program, "start", operator)
    program = wait_state(program, {"stopped", "fatal", "running"})
    assert program.state != "running"
    assert f"{tool} cannot be run by its own user (uid" in program.last_error
    assert "chmod o+x" in program.last_error


def test_python_unbuffered_output_goes_to_its_log(program_processes, operator, tmp_path):
    job = script(tmp_path, "talks.py", """
        import time
        print("hello from the program", flush=True)
        time.sleep(300)
    """)
    program = make_program(name="talks", command=f"{PYTHON} {job}")
    control.request(program, "start", operator)
    program = wait_state(program, {"running"})
    log = Path(ProgramAdapter().build_spec(program).log_file)
    wait_until(lambda: log.exists() and "hello from the program" in log.read_text(), timeout=10)
    assert log.parent.name == "programs" and log.name == "talks.log"
    control.request(program, "stop", operator)
    wait_state(program, {"stopped"})



def test_reconcile_restarts_it_when_it_and_its_keeper_died_unseen(program_processes, operator):
    from processes.watcher import reconcile_local

    program = make_program(name="orphan", command="sleep 300", restart_policy="on-failure")
    control.request(program, "start", operator)
    program = wait_state(program, {"running"})
    run_dir = ProgramAdapter().run_dir(program)
    first = program.pid
    # A kill -9 of both, as an OOM kill of the keeper's group would do: nobody saw the exit.
    os.kill(keeper.read_keeper_identity(run_dir).pid, signal.SIGKILL)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not keeper.keeper_alive(run_dir) and (
        not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE), timeout=5)
    # The worker's own watcher may reconcile first: either way the restart is reconcile's.
    reconcile_local(program.run_host)

    def running_again() -> bool:
        program.refresh_from_db()
        return program.state == "running" and program.pid != first

    wait_until(running_again, timeout=15)
    assert Run.objects.of(program).filter(trigger="reconcile", pid=program.pid).exists()
    died = Activity.objects.of(program).filter(pid=first).exclude(to_state__in=["starting", "running"]).first()
    assert died is not None and died.expected is not True
    control.request(program, "stop", operator)
    wait_state(program, {"stopped"})
