"""A unix socket left by a killed server is removed before the next start; a live one is refused."""

from __future__ import annotations

import socket
from pathlib import Path

from portal.process.probes import clear_stale_socket


def short(tmp_path: Path) -> str:
    return str(tmp_path / "s.sock") if len(str(tmp_path)) < 90 else f"/tmp/stale-{id(tmp_path)}.sock"


def test_a_socket_nobody_listens_on_is_removed(tmp_path: Path) -> None:
    path = short(tmp_path)
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(path)
    left.close()  # the file stays, as after a SIGKILL
    assert Path(path).exists()
    assert clear_stale_socket(path) is None
    assert not Path(path).exists()


def test_a_socket_a_server_listens_on_is_refused_and_kept(tmp_path: Path) -> None:
    path = short(tmp_path)
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(1)
    try:
        message = clear_stale_socket(path)
        assert message is not None and "another process is already listening" in message
        assert Path(path).exists()
    finally:
        live.close()
        Path(path).unlink()


def test_a_file_that_is_not_a_socket_is_never_removed(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    path.write_text("data")
    assert "is not a socket" in (clear_stale_socket(str(path)) or "")
    assert path.read_text() == "data"
    assert clear_stale_socket(str(tmp_path / "none.sock")) is None
