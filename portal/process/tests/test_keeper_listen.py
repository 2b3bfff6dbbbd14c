"""The socket a keeper binds and hands its process by descriptor (Spec.listen,
portal/process/listener.py): the process serves it without knowing more than its number, it
lives across the process's restarts, a file gone is bound again, and a stop removes it."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from portal.process import keeper
from portal.process.listener import LISTEN_FD
from portal.process.probes import unix_http_status
from portal.process.spec import Spec
from portal.process.tests.conftest import PROGRAMS, wait_until


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


def fd_spec(run_dir: Path, tag: str, *options: str, **fields: Any) -> Spec:
    path = str(run_dir / "app.sock")
    assert len(path) < 100, "pytest's tmp_path is too long for a unix socket here"
    values: dict[str, Any] = {
        "name": "fd-server",
        "argv": [sys.executable, str(PROGRAMS / "fd_server.py"), LISTEN_FD, "--tag", tag, *options],
        "probe": {"kind": "unix-http", "socket": path, "path": "/"},
        "listen": {"path": path, "mode": 0o600},
        "init_timeout": 10.0,
        "quick_secs": 0.0,
        "stop_timeout": 2.0,
    }
    values.update(fields)
    return Spec(**values)


def ask(path: Path) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def started(run_dir: Path, spec: Spec) -> dict[str, Any]:
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"running", "fatal", "exited"}, timeout=15)
    assert status["state"] == "running", status
    return status


def test_the_keeper_binds_the_socket_and_the_process_serves_its_descriptor(run_dir: Path, tag: str) -> None:
    status = started(run_dir, fd_spec(run_dir, tag))
    path = run_dir / "app.sock"
    info = os.lstat(path)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    answer = ask(path)
    assert answer == {"pid": status["pid"], "bound": str(path)}
    cmdline = Path(f"/proc/{status['pid']}/cmdline").read_bytes().split(b"\0")
    assert LISTEN_FD.encode() not in cmdline and cmdline[2].isdigit()  # the number, not the mark
    keeper.request_stop(run_dir, timeout=10)
    assert not path.exists(), "a stop removes the socket"


def test_the_socket_outlives_a_kill_9_and_the_next_process_serves_it(run_dir: Path, tag: str) -> None:
    first = started(run_dir, fd_spec(run_dir, tag))
    path = run_dir / "app.sock"
    inode = os.lstat(path).st_ino
    os.kill(first["pid"], signal.SIGKILL)
    wait_until(lambda: (keeper.read_status(run_dir) or {}).get("pid") not in (None, first["pid"])
               and keeper.read_status(run_dir)["state"] == "running", timeout=15)
    assert os.lstat(path).st_ino == inode, "the same socket, kept open by the keeper"
    assert ask(path)["pid"] == keeper.read_status(run_dir)["pid"]
    keeper.request_stop(run_dir, timeout=10)


def test_a_request_sent_while_the_process_is_replaced_waits_for_the_next_one(run_dir: Path, tag: str) -> None:
    """Between a kill -9 and the restart, a connection waits in the keeper's backlog (an engine
    that bound its own socket would have left none: refused, a 503 from the front)."""
    # A run shorter than quick_secs is a quick failure: the restart waits backoff_base (1 s).
    first = started(run_dir, fd_spec(run_dir, tag, quick_secs=30.0, backoff_base=1.0))
    path = run_dir / "app.sock"
    os.kill(first["pid"], signal.SIGKILL)
    wait_until(lambda: (keeper.read_status(run_dir) or {}).get("state") == "exited", timeout=10)
    answer = ask(path)  # sent while no process runs
    assert answer["pid"] != first["pid"]
    assert answer["pid"] == keeper.read_status(run_dir)["pid"]
    keeper.request_stop(run_dir, timeout=10)


def test_a_socket_whose_file_went_is_bound_again_at_the_next_start(run_dir: Path, tag: str) -> None:
    """As gunicorn removes its socket's file when it stops (where it may)."""
    first = started(run_dir, fd_spec(run_dir, tag, "--unlink-at-term", restart_policy="always"))
    path = run_dir / "app.sock"
    os.kill(first["pid"], signal.SIGTERM)
    wait_until(lambda: (keeper.read_status(run_dir) or {}).get("pid") not in (None, first["pid"])
               and keeper.read_status(run_dir)["state"] == "running", timeout=15)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert ask(path)["pid"] == keeper.read_status(run_dir)["pid"]
    keeper.request_stop(run_dir, timeout=10)


def test_a_link_put_at_the_path_is_never_served_through(run_dir: Path, tag: str, tmp_path: Path) -> None:
    """Should anything put a link there, the next start replaces it with the keeper's own socket."""
    first = started(run_dir, fd_spec(run_dir, tag, restart_policy="always"))
    path = run_dir / "app.sock"
    other = tmp_path / "other.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as elsewhere:
        elsewhere.bind(str(other))
        elsewhere.listen(1)
        path.unlink()
        path.symlink_to(other)
        os.kill(first["pid"], signal.SIGKILL)
        wait_until(lambda: (keeper.read_status(run_dir) or {}).get("pid") not in (None, first["pid"])
                   and keeper.read_status(run_dir)["state"] == "running", timeout=15)
        assert stat.S_ISSOCK(os.lstat(path).st_mode), "the link is gone, the keeper's socket is back"
        assert ask(path)["pid"] == keeper.read_status(run_dir)["pid"]
    keeper.request_stop(run_dir, timeout=10)


def test_a_keeper_that_adopted_the_process_removes_the_socket_at_the_stop(run_dir: Path, tag: str) -> None:
    first = started(run_dir, fd_spec(run_dir, tag))
    path = run_dir / "app.sock"
    os.kill(first["keeper_pid"], signal.SIGKILL)  # the process lives on, serving the socket
    wait_until(lambda: not keeper.keeper_alive(run_dir), timeout=10)
    keeper.adopt(run_dir)
    assert keeper.wait_for(run_dir, {"running"}, timeout=10)["pid"] == first["pid"]
    assert ask(path)["pid"] == first["pid"]
    keeper.request_stop(run_dir, timeout=10)
    assert not path.exists(), "nobody listens on it any more: removed"


def test_a_live_server_at_the_path_refuses_the_start_saying_so(run_dir: Path, tag: str) -> None:
    run_dir.mkdir(mode=0o700)
    path = run_dir / "app.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stranger:
        stranger.bind(str(path))
        stranger.listen(1)
        keeper.launch(fd_spec(run_dir, tag, max_quick_failures=1), run_dir)
        status = keeper.wait_for(run_dir, {"fatal"}, timeout=15)
        assert status["state"] == "fatal"
        assert f"another process is already listening on {path}; stop it" in status["error"]
        assert unix_http_status(str(path), "/", 0.5) is None  # still the stranger's, untouched


def test_a_stale_socket_left_by_a_killed_keeper_is_replaced(run_dir: Path, tag: str) -> None:
    run_dir.mkdir(mode=0o700)
    path = run_dir / "app.sock"
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(path))
    left.close()  # the file stays, as after a SIGKILL of the keeper and its process
    status = started(run_dir, fd_spec(run_dir, tag))
    assert ask(path)["pid"] == status["pid"]
    keeper.request_stop(run_dir, timeout=10)


@pytest.mark.parametrize("listen", [{"path": "relative.sock"}, {"path": "/x/" + "y" * 120},
                                    {"path": "/x/app.sock", "mode": "0600"}, {"path": "/x/a.sock", "port": 1}])
def test_a_listen_setting_that_cannot_work_is_refused(listen: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"listen|socket path"):
        Spec(name="x", argv=["true"], listen=listen)
