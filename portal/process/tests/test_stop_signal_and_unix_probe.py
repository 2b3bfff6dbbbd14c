"""A spec's stop signal (supervisor's stopsignal) and the plain unix-socket readiness probe."""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from portal.process import keeper
from portal.process.probes import probe_once
from portal.process.spec import Spec

# Writes which signal reached it into a file, then exits 0; ignores SIGTERM so that only the
# spec's own signal (or the final SIGKILL) ends it. Optionally listens on a unix socket.
SIGNAL_PROGRAM = textwrap.dedent('''
    import signal, socket, sys, time
    out, sock = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
    def got(signum, frame):
        open(out, "w").write(signal.Signals(signum).name)
        sys.exit(0)
    for name in ("SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT"):
        signal.signal(getattr(signal, name), got)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sock:
        time.sleep(0.3)  # not ready at once: the probe must wait for the socket
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(sock)
        listener.listen()
    print("ready", flush=True)
    while True:
        time.sleep(1)
''')


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "signals.py"
    path.write_text(SIGNAL_PROGRAM)
    return path


@pytest.mark.parametrize("name", ["INT", "HUP", "USR1", "QUIT"])
def test_a_stop_sends_the_specs_stop_signal(run_dir, program, tmp_path, name):
    out = tmp_path / "got"
    spec = Spec(name="sig", argv=[sys.executable, str(program), str(out)], stop_signal=name, stop_timeout=5,
                init_timeout=0.2, quick_secs=0.2)
    keeper.launch(spec, run_dir)
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["state"] == "running"
    started = time.monotonic()
    assert keeper.request_stop(run_dir, timeout=10)
    assert out.read_text() == f"SIG{name}"
    assert time.monotonic() - started < 4  # it exited on the signal, not after the stop timeout
    stopping = [e for e in keeper.read_events(run_dir) if e.get("to") == "stopping"][-1]
    assert stopping["message"].startswith(f"SIG{name} to process group")


def test_a_program_deaf_to_its_stop_signal_is_killed_after_the_stop_timeout(run_dir, program, tmp_path):
    out = tmp_path / "got"
    # TERM is ignored by the program: the stop timeout passes, then SIGKILL.
    spec = Spec(name="deaf", argv=[sys.executable, str(program), str(out)], stop_signal="TERM", stop_timeout=1,
                init_timeout=0.2, quick_secs=0.2)
    keeper.launch(spec, run_dir)
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["state"] == "running"
    started = time.monotonic()
    assert keeper.request_stop(run_dir, timeout=10)
    took = time.monotonic() - started
    assert 1.0 <= took < 4
    last = keeper.read_events(run_dir)[-1]
    assert last["to"] == "stopped" and last["signal"] == "SIGKILL"
    assert "did not stop within 1 s of SIGTERM" in last["message"]
    assert not out.exists()


def test_an_unknown_stop_signal_is_refused_with_the_list():
    with pytest.raises(ValueError, match="stop_signal 'STOP' is not one of TERM, INT"):
        Spec(name="p", argv=["true"], stop_signal="STOP")


def test_an_old_spec_without_a_stop_signal_stops_with_sigterm():
    data = Spec(name="p", argv=["true"]).to_dict()
    del data["stop_signal"]
    assert Spec.from_dict(data).stop_signal == "TERM"


def test_a_unix_probe_answers_once_something_listens_on_the_socket(tmp_path):
    path = tmp_path / "s.sock"
    probe = {"kind": "unix", "socket": str(path)}
    assert not probe_once(probe, timeout=0.2)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen()
        assert probe_once(probe, timeout=0.2)
        link = tmp_path / "link.sock"
        link.symlink_to(path)
        assert not probe_once({"kind": "unix", "socket": str(link)}, timeout=0.2)  # no link is followed
    assert not probe_once(probe, timeout=0.2)  # the file is left, nobody listens


def test_a_start_with_a_unix_probe_is_running_once_the_program_listens(run_dir, program, tmp_path):
    sock = tmp_path / "p.sock"
    spec = Spec(name="unix", argv=[sys.executable, str(program), str(tmp_path / "got"), str(sock)],
                stop_signal="INT", init_timeout=10, probe={"kind": "unix", "socket": str(sock)})
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"running", "fatal"}, timeout=15)
    assert status["state"] == "running", status.get("error")
    assert status["time_to_ready"] >= 0.3
    assert keeper.request_stop(run_dir, timeout=10)


def test_a_unix_probe_socket_someone_else_listens_on_fails_the_start(run_dir, program, tmp_path):
    sock = tmp_path / "taken.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(sock))
        listener.listen()
        spec = Spec(name="unix", argv=[sys.executable, str(program), str(tmp_path / "got")],
                    init_timeout=2, max_quick_failures=1, probe={"kind": "unix", "socket": str(sock)})
        keeper.launch(spec, run_dir)
        status = keeper.wait_for(run_dir, {"fatal"}, timeout=10)
    assert status["state"] == "fatal"
    assert f"another process already listens on {sock}" in status["error"]


def test_a_unix_probe_needs_its_socket():
    with pytest.raises(ValueError, match="a unix probe needs the socket's path"):
        Spec(name="p", argv=["true"], probe={"kind": "unix"})
