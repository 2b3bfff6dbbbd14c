import os

from portal.process import keeper
from portal.process.spec import Spec
from portal.process.tests.conftest import wait_until
from portal.process.tests.test_keeper_start_stop import tcp_spec

SECRET = "hunter2-never-shown"


def test_the_childs_output_reaches_the_log_file(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag, "--lines", "2"), run_dir)
    status = keeper.wait_for(run_dir, {"running"}, timeout=10)
    log_file = run_dir / "output.log"
    assert status["log_file"] == str(log_file)
    wait_until(lambda: f"listening on 127.0.0.1:{port}" in log_file.read_text(), timeout=5)
    assert "line 1\nline 2\n" in log_file.read_text()


def test_the_first_lines_of_a_run_are_kept_in_the_status(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag, "--lines", "30"), run_dir)
    keeper.wait_for(run_dir, {"running"}, timeout=10)
    status = wait_until(lambda: len((s := keeper.read_status(run_dir))["first_lines"]) == 20 and s, timeout=5)
    assert status["first_lines"] == [f"line {i}" for i in range(1, 21)]


def test_a_second_run_shows_its_own_first_lines(run_dir, port, tag):
    keeper.launch(tcp_spec(port, tag, "--lines", "1"), run_dir)
    keeper.wait_for(run_dir, {"running"}, timeout=10)
    assert keeper.request_stop(run_dir, timeout=10)
    keeper.launch(tcp_spec(port, tag, "--lines", "1", "--print-env", "HOME"), run_dir)
    keeper.wait_for(run_dir, {"running"}, timeout=10)
    status = wait_until(lambda: len((s := keeper.read_status(run_dir))["first_lines"]) == 3 and s, timeout=5)
    assert status["first_lines"][0] == "line 1" and status["first_lines"][1].startswith("env HOME=")


def test_the_log_rotates_by_size_and_the_child_keeps_writing(run_dir, port, tag):
    spec = tcp_spec(port, tag, "--chatty", "2000", log_max_bytes=20_000, log_backups=2)
    keeper.launch(spec, run_dir)
    keeper.wait_for(run_dir, {"running"}, timeout=10)
    log_file = run_dir / "output.log"
    wait_until(lambda: (run_dir / "output.log.2").exists(), timeout=10)
    # Writing goes on into the truncated file (O_APPEND: no hole of zeros at its start).
    wait_until(lambda: 0 < log_file.stat().st_size, timeout=5)
    with open(log_file, "rb") as f:
        assert b"\0" not in f.read(4096)
    assert not (run_dir / "output.log.3").exists()
    assert os.path.getsize(run_dir / "output.log.1") >= 20_000
    assert keeper.read_status(run_dir)["state"] == "running"
    assert keeper.request_stop(run_dir, timeout=10)


def test_a_secret_value_never_reaches_status_events_or_keeper_log(run_dir, port, tag):
    spec = tcp_spec(port, tag, "--print-env", "GATEWAY_PASSPHRASE", "--exit-after", "0.3", "--exit-code", "1",
                    env={"GATEWAY_PASSPHRASE": SECRET}, secret_env=["GATEWAY_PASSPHRASE"],
                    restart_policy="never", quick_secs=0.0)
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"exited"}, timeout=10)
    assert status["state"] == "exited"
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=5)
    # The child got it (and printed it: its own log is its own business) ...
    assert f"env GATEWAY_PASSPHRASE={SECRET}" in (run_dir / "output.log").read_text()
    # ... but what the portal writes and shows has it masked.
    assert "env GATEWAY_PASSPHRASE=****" in status["first_lines"]
    assert "GATEWAY_PASSPHRASE=****" in status["command"]
    for name in ("status.json", "events.jsonl", "keeper.log"):
        assert SECRET not in (run_dir / name).read_text(), name


def test_a_failed_start_names_the_last_output_line_in_its_error(run_dir, tag):
    import sys

    spec = Spec(name="bad", argv=[sys.executable, "-c", "import no_such_module_here", tag],
                probe={"kind": "tcp", "port": 9}, max_quick_failures=1)
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"fatal"}, timeout=10)
    assert "ModuleNotFoundError: No module named 'no_such_module_here'" in status["error"]
    assert "exit code 1" in status["error"]
