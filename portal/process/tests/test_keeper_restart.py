import os
import signal
import sys
import time

import psutil

from portal.process import keeper
from portal.process.spec import Spec
from portal.process.tests.conftest import PROGRAMS, processes_mentioning, wait_until
from portal.process.tests.test_keeper_start_stop import tcp_spec, transitions


def event_to(run_dir, state, after_seq=0):
    for event in keeper.read_events(run_dir, after_seq):
        if event["to"] == state:
            return event
    return None


def test_a_kill_9_of_the_child_is_recorded_at_once_and_restarted_on_failure(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag, restart_policy="on-failure", quick_secs=0.0), run_dir)
    first = keeper.wait_for(run_dir, {"running"}, timeout=10)
    seq = keeper.read_events(run_dir)[-1]["seq"]

    os.kill(first["pid"], signal.SIGKILL)
    killed_at = time.time()
    exited = wait_until(lambda: event_to(run_dir, "exited", seq), timeout=2)
    assert exited["time"] - killed_at < 2.0
    assert exited["signal"] == "SIGKILL" and exited["exit_code"] is None
    assert exited["expected"] is False and exited["pid"] == first["pid"]

    again = wait_until(lambda: (s := keeper.read_status(run_dir))["state"] == "running"
                       and s["pid"] != first["pid"] and s, timeout=10)
    assert again["restarts"] == 1
    restart = event_to(run_dir, "starting", exited["seq"])
    assert restart["from"] == "exited" and restart["trigger"] == "auto-restart"
    assert keeper.request_stop(run_dir, timeout=10)


def test_a_program_that_exits_at_once_backs_off_then_is_fatal_after_n_failures(run_dir, tag):
    spec = Spec(name="broken", argv=[sys.executable, str(PROGRAMS / "exit_at_once.py"), tag],
                probe={"kind": "tcp", "host": "127.0.0.1", "port": 9},
                backoff_base=0.1, max_quick_failures=3)
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"fatal"}, timeout=10)
    assert status["state"] == "fatal"
    assert transitions(run_dir) == [
        ("stopped", "starting"), ("starting", "backoff"),
        ("backoff", "starting"), ("starting", "backoff"),
        ("backoff", "starting"), ("starting", "backoff"),
        ("backoff", "fatal"),
    ]
    events = keeper.read_events(run_dir)
    backoffs = [e for e in events if e["to"] == "backoff"]
    assert all(e["exit_code"] == 3 and e["expected"] is False for e in backoffs)
    # Each wait is longer than the last: 0.1 s, then 0.2 s.
    gaps = [events[i + 1]["time"] - e["time"] for i, e in enumerate(events) if e["to"] == "backoff"][:2]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2
    assert "gave up after 3 failed starts" in status["error"]
    assert "cannot start: configuration is broken" in status["error"]
    assert status["first_lines"] == ["cannot start: configuration is broken"]
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=5)


def test_a_start_that_is_not_ready_in_time_is_killed_and_counts_as_a_failure(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag, "--delay", "30", init_timeout=0.3, max_quick_failures=1), run_dir)
    status = keeper.wait_for(run_dir, {"fatal"}, timeout=10)
    assert status["state"] == "fatal"
    assert "not ready within init_timeout 0.3 s; killed" in status["error"]
    wait_until(lambda: processes_mentioning(tag) == [], timeout=5)


def test_a_program_that_ignores_sigterm_is_killed_after_stop_timeout(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag, "--ignore-term", stop_timeout=0.5), run_dir)
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["state"] == "running"
    started = time.monotonic()
    assert keeper.request_stop(run_dir, timeout=10)
    took = time.monotonic() - started
    assert 0.5 <= took < 3.0
    last = keeper.read_events(run_dir)[-1]
    assert last["to"] == "stopped" and last["signal"] == "SIGKILL"
    assert "did not stop within 0.5 s of SIGTERM; killed" in last["message"]
    assert processes_mentioning(tag) == []


def test_a_clean_exit_is_expected_and_not_restarted_on_failure(run_dir, port, tag):
    spec = tcp_spec(port, tag, "--exit-after", "0.2", "--exit-code", "0", quick_secs=0.0)
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"exited"}, timeout=10)
    assert status["state"] == "exited" and status["exit_code"] == 0 and status["error"] is None
    assert event_to(run_dir, "exited")["expected"] is True
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=5)
    assert keeper.read_status(run_dir)["state"] == "exited"
    assert keeper.request_stop(run_dir, timeout=5)
    assert keeper.read_status(run_dir)["state"] == "stopped"


def test_restart_always_restarts_even_a_clean_exit(run_dir, port, tag):
    spec = tcp_spec(port, tag, "--exit-after", "0.2", restart_policy="always", quick_secs=0.0)
    keeper.launch(spec, run_dir)
    wait_until(lambda: keeper.read_status(run_dir)["restarts"] >= 1, timeout=10)
    # The status file and the journal are two writes: the journal line may follow a moment later.
    wait_until(lambda: ("exited", "starting") in transitions(run_dir), timeout=5)
    assert keeper.request_stop(run_dir, timeout=10)


def test_quick_exits_after_ready_give_up_after_n(run_dir, port, tag):
    spec = tcp_spec(port, tag, "--exit-after", "0.05", "--exit-code", "1",
                    restart_policy="always", quick_secs=5.0, max_quick_failures=2, backoff_base=0.05)
    keeper.launch(spec, run_dir)
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=10)
    status = keeper.read_status(run_dir)
    # It gave up: fatal, as after failed starts; a person must start it again.
    assert status["state"] == "fatal"
    assert "gave up after 2 quick exits in a row" in status["error"]
    assert transitions(run_dir)[-2:] == [("running", "exited"), ("exited", "fatal")]
    assert event_to(run_dir, "fatal")["message"] == status["error"]


def test_after_the_keeper_is_killed_adopt_mode_picks_up_the_child_and_can_stop_it(run_dir, port, tag):
    info = keeper.launch(tcp_spec(port, tag, "--grandchild", quick_secs=0.0), run_dir)
    running = keeper.wait_for(run_dir, {"running"}, timeout=10)
    os.kill(info.keeper.pid, signal.SIGKILL)
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=5)
    assert psutil.Process(running["pid"]).is_running()  # the child outlives its keeper

    with_no_keeper = keeper.reconcile(run_dir)
    assert with_no_keeper["state"] == "running" and "runs unsupervised" in with_no_keeper["error"]
    try:
        keeper.launch(tcp_spec(port, tag), run_dir)
        raise AssertionError("launch must refuse while the old child lives")
    except keeper.AlreadyRunning as exc:
        assert str(running["pid"]) in str(exc)

    adopted = keeper.adopt(run_dir)
    assert adopted.mode == "adopt" and adopted.keeper.pid != info.keeper.pid
    status = keeper.read_status(run_dir)
    assert status["state"] == "running" and status["adopted"] is True and status["error"] is None
    assert status["pid"] == running["pid"] and status["keeper_pid"] == adopted.keeper.pid

    assert keeper.request_stop(run_dir, timeout=10)
    assert keeper.read_status(run_dir)["state"] == "stopped"
    assert processes_mentioning(tag) == []


def test_an_adopted_child_that_dies_is_recorded_with_an_unknown_exit_and_restarted(run_dir, port, tag):
    info = keeper.launch(tcp_spec(port, tag, quick_secs=0.0), run_dir)
    running = keeper.wait_for(run_dir, {"running"}, timeout=10)
    os.kill(info.keeper.pid, signal.SIGKILL)
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=5)
    keeper.adopt(run_dir)
    seq = keeper.read_events(run_dir)[-1]["seq"]

    os.kill(running["pid"], signal.SIGKILL)
    exited = wait_until(lambda: event_to(run_dir, "exited", seq), timeout=2)
    assert exited["exit_code"] is None and exited["expected"] is None
    assert "exit status unknown" in exited["message"]
    again = wait_until(lambda: (s := keeper.read_status(run_dir))["state"] == "running"
                       and s["pid"] != running["pid"] and s, timeout=10)
    assert again["adopted"] is False
    assert keeper.request_stop(run_dir, timeout=10)


def test_stop_without_a_keeper_stops_the_child_directly_and_records_it(run_dir, port, tag):
    info = keeper.launch(tcp_spec(port, tag, "--grandchild"), run_dir)
    keeper.wait_for(run_dir, {"running"}, timeout=10)
    os.kill(info.keeper.pid, signal.SIGKILL)
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=5)
    assert keeper.request_stop(run_dir, timeout=10, trigger="reconcile")
    assert keeper.read_status(run_dir)["state"] == "stopped"
    assert transitions(run_dir)[-2:] == [("running", "stopping"), ("stopping", "stopped")]
    assert keeper.read_events(run_dir)[-1]["trigger"] == "reconcile"
    assert processes_mentioning(tag) == []


def test_a_dead_keeper_and_a_dead_child_are_reconciled_to_exited(run_dir, port, tag):
    info = keeper.launch(tcp_spec(port, tag), run_dir)
    running = keeper.wait_for(run_dir, {"running"}, timeout=10)
    os.kill(info.keeper.pid, signal.SIGKILL)
    os.kill(running["pid"], signal.SIGKILL)
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=5)
    wait_until(lambda: not psutil.pid_exists(running["pid"])
               or psutil.Process(running["pid"]).status() == psutil.STATUS_ZOMBIE, timeout=5)
    status = keeper.reconcile(run_dir)
    assert status["state"] == "exited" and "exit status unknown" in status["error"]
    # A new launch starts from there.
    keeper.launch(tcp_spec(port, tag), run_dir)
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["state"] == "running"
    assert keeper.request_stop(run_dir, timeout=10)


def test_a_stop_during_backoff_ends_the_wait_at_once(run_dir, tag):
    spec = Spec(name="broken", argv=[sys.executable, str(PROGRAMS / "exit_at_once.py"), tag],
                probe={"kind": "tcp", "host": "127.0.0.1", "port": 9}, backoff_base=30.0)
    keeper.launch(spec, run_dir)
    assert keeper.wait_for(run_dir, {"backoff"}, timeout=10)["state"] == "backoff"
    started = time.monotonic()
    assert keeper.request_stop(run_dir, timeout=5)
    assert time.monotonic() - started < 1.0
    assert transitions(run_dir)[-1] == ("backoff", "stopped")


def test_a_stop_while_starting_stops_the_half_started_process(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag, "--delay", "30", init_timeout=30), run_dir)
    wait_until(lambda: keeper.read_status(run_dir)["pid"], timeout=5)
    assert keeper.request_stop(run_dir, timeout=10)
    assert transitions(run_dir)[-2:] == [("starting", "stopping"), ("stopping", "stopped")]
    assert processes_mentioning(tag) == []


def test_a_probe_host_that_does_not_resolve_fails_each_start_at_once_naming_it(run_dir, port, tag):
    spec = Spec(name="demo", argv=[sys.executable, str(PROGRAMS / "tcp_server.py"), str(port), "--tag", tag],
                probe={"kind": "tcp", "host": "no.such.host.invalid", "port": port},
                init_timeout=5.0, backoff_base=0.05, max_quick_failures=2, stop_timeout=1.0)
    started = time.monotonic()
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"fatal"}, timeout=15)
    # Not one initialization timeout per attempt: the name is found missing before anything runs.
    assert time.monotonic() - started < 4
    assert status["state"] == "fatal"
    assert "no.such.host.invalid cannot be resolved" in status["error"]
    assert "use an IP address, or fix the name" in status["error"]
    assert keeper.read_status(run_dir)["pid"] is None  # no server was ever started
    wait_until(lambda: not processes_mentioning(tag), timeout=5)  # the keeper is gone too


FAILING_APP = """
import socket, sys
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen()
while True:
    conn, _ = server.accept()
    conn.recv(1024)
    with open(sys.argv[2], "a") as f:
        f.write("x")
    conn.sendall(b"HTTP/1.1 500 Internal Server Error\\r\\nContent-Length: 0\\r\\n\\r\\n")
    conn.close()
"""


def test_an_app_that_answers_500_is_probed_gently_and_the_failure_says_what_it_answered(run_dir, tmp_path):
    """Up but failing (a traceback in its log at each request): the probe slows down to one every
    0.5 s (it asked 37 times a second, megabytes of log in one failed start), and the start's
    failure names the answer, so that the reason is not only in the log."""
    sock, count = tmp_path / "app.sock", tmp_path / "requests"
    spec = Spec(name="failing", argv=[sys.executable, "-c", FAILING_APP, str(sock), str(count)],
                probe={"kind": "unix-http", "socket": str(sock), "path": "/app/", "timeout": 1.0},
                init_timeout=2.0, max_quick_failures=1, restart_policy="never")
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"fatal"}, timeout=15)
    assert status["state"] == "fatal", status
    assert "not ready within init_timeout 2 s (it answered HTTP 500 to GET /app/: its log says why)" in status["error"]
    assert 1 <= len(count.read_text()) <= 6  # 2 s at one probe per 0.5 s (at 20 ms: about 90)
