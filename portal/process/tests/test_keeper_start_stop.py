import json
import os
import stat
import sys
import time
from pathlib import Path

import psutil
import pytest

from portal.process import keeper
from portal.process.spec import Spec
from portal.process.tests.conftest import processes_mentioning, server_argv

ROOT = Path(__file__).resolve().parents[3]


def tcp_spec(port: int, tag: str, *options: str, **fields) -> Spec:
    fields.setdefault("stop_timeout", 2.0)
    return Spec(name="demo", argv=server_argv(port, tag, *options),
                probe={"kind": "tcp", "host": "127.0.0.1", "port": port}, **fields)


def transitions(run_dir: Path) -> list[tuple[str, str]]:
    return [(e["from"], e["to"]) for e in keeper.read_events(run_dir)]


def test_a_started_server_is_running_once_its_probe_answers(run_dir, port, tag):
    info = keeper.launch(tcp_spec(port, tag), run_dir)
    assert info.keeper.pid != os.getpid() and info.mode == "launch"
    assert keeper.read_status(run_dir)["state"] in ("starting", "running")  # never a stale state

    status = keeper.wait_for(run_dir, {"running", "fatal"}, timeout=10)
    assert status["state"] == "running"
    assert psutil.Process(status["pid"]).create_time() == pytest.approx(status["create_time"])
    assert status["keeper_pid"] == info.keeper.pid
    assert 0 < status["time_to_ready"] < 5
    assert status["ready_at"] >= status["run_started_at"]
    assert str(port) in status["command"]
    assert status["error"] is None
    assert transitions(run_dir) == [("stopped", "starting"), ("starting", "running")]
    events = keeper.read_events(run_dir)
    assert [e["seq"] for e in events] == [1, 2]
    assert events[0]["trigger"] == "user" and events[1]["pid"] == status["pid"]
    assert keeper.read_events(run_dir, after_seq=1) == events[1:]


def test_the_keeper_is_detached_in_its_own_session_and_not_our_child(run_dir, port, tag):
    info = keeper.launch(tcp_spec(port, tag), run_dir)
    proc = psutil.Process(info.keeper.pid)
    assert proc.ppid() != os.getpid()
    assert os.getsid(info.keeper.pid) == info.keeper.pid != os.getsid(0)
    assert all(c.pid != info.keeper.pid for c in psutil.Process().children(recursive=True))
    status = keeper.wait_for(run_dir, {"running"}, timeout=10)
    assert os.getsid(status["pid"]) == status["pid"]  # the child leads its own session too
    assert keeper.keeper_alive(run_dir)


def test_the_run_dir_and_its_secret_files_are_private(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag), run_dir)
    keeper.wait_for(run_dir, {"running"}, timeout=10)
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "spec.json").stat().st_mode) == 0o600
    assert keeper.read_spec(run_dir).argv == tcp_spec(port, tag).argv


def test_stop_leaves_no_process_of_the_tree_including_grandchildren(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag, "--grandchild", "--escaped-grandchild"), run_dir)
    status = keeper.wait_for(run_dir, {"running"}, timeout=10)
    assert status["state"] == "running"
    tree = [psutil.Process(status["pid"]), *psutil.Process(status["pid"]).children(recursive=True)]
    assert len(tree) == 3  # the server, a grandchild in its group and one that escaped with setsid

    started = time.monotonic()
    assert keeper.request_stop(run_dir, timeout=10)
    took = time.monotonic() - started

    status = keeper.read_status(run_dir)
    assert status["state"] == "stopped"
    assert status["error"] is None
    assert not keeper.keeper_alive(run_dir)
    assert processes_mentioning(tag) == []
    assert transitions(run_dir)[-2:] == [("running", "stopping"), ("stopping", "stopped")]
    last = keeper.read_events(run_dir)[-1]
    assert last["expected"] is True and last["trigger"] == "user" and last["signal"] == "SIGTERM"
    assert took < 2.0


def test_a_second_launch_is_refused_while_a_keeper_runs(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag), run_dir)
    with pytest.raises(keeper.KeeperBusy, match="already running"):
        keeper.launch(tcp_spec(port, tag), run_dir)
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["state"] == "running"


def test_a_second_start_after_a_stop_continues_the_event_sequence(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag), run_dir)
    keeper.wait_for(run_dir, {"running"}, timeout=10)
    assert keeper.request_stop(run_dir, timeout=10)
    keeper.launch(tcp_spec(port, tag), run_dir, trigger="reconcile")
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["state"] == "running"
    events = keeper.read_events(run_dir)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[4]["trigger"] == "reconcile"


def test_a_port_already_in_use_fails_the_start_and_names_its_holder(run_dir, port, tag):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        spec = tcp_spec(port, tag, max_quick_failures=1)
        keeper.launch(spec, run_dir)
        status = keeper.wait_for(run_dir, {"fatal"}, timeout=10)
    assert status["state"] == "fatal"
    assert f"port {port} on 127.0.0.1 is already in use by pid {os.getpid()}" in status["error"]


def test_a_missing_program_fails_with_a_readable_error(run_dir, tag):
    spec = Spec(name="missing", argv=[f"{tag}/no-such-program"], max_quick_failures=1)
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"fatal"}, timeout=10)
    assert status["state"] == "fatal"
    assert "cannot start" in status["error"] and "No such file" in status["error"]


def test_stop_without_a_launch_is_a_no_op(run_dir):
    assert keeper.request_stop(run_dir, timeout=1)
    assert keeper.read_status(run_dir) is None


def test_the_gateway_probe_pings_a_real_gateway_server(run_dir, port, tag):
    from gateways.protocol import make_verifier

    verifier = make_verifier("correct horse", iterations=1000)
    spec = Spec(
        name="gateway",
        argv=[sys.executable, "-m", "gateways.server", "--host", "127.0.0.1", "--port", str(port),
              "--log-file", str(run_dir / "gateway.log")],
        env={"GATEWAY_PASSPHRASE": verifier, "TEST_TAG": tag},
        secret_env=["GATEWAY_PASSPHRASE"],
        cwd=str(ROOT),
        probe={"kind": "import", "path": "gateways.probe:ping", "host": "127.0.0.1", "port": port,
               "verifier": verifier},
        stop_timeout=3.0,
    )
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"running", "fatal", "exited"}, timeout=10)
    assert status["state"] == "running", status["error"]
    # The probe authenticated with the verifier; the secret itself appears nowhere.
    for name in ("status.json", "events.jsonl", "keeper.log"):
        assert verifier not in (run_dir / name).read_text()
    assert verifier not in json.dumps(status)
    assert keeper.request_stop(run_dir, timeout=10)
    assert keeper.read_status(run_dir)["state"] == "stopped"


def test_the_gateway_probe_is_not_fooled_by_a_plain_tcp_listener(port):
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert keeper.probe_once({"kind": "tcp", "host": "127.0.0.1", "port": port}, timeout=0.5)
        assert not keeper.probe_once({"kind": "import", "path": "gateways.probe:ping", "host": "127.0.0.1",
                                      "port": port}, timeout=0.5)


def test_an_http_probe_waits_for_a_web_server_to_answer(run_dir, port, tag):
    spec = Spec(name="web", argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                  "--directory", tag],
                probe={"kind": "http", "url": f"http://127.0.0.1:{port}/"}, stop_timeout=2.0)
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"running", "fatal"}, timeout=10)
    assert status["state"] == "running"
    assert keeper.request_stop(run_dir, timeout=10)
