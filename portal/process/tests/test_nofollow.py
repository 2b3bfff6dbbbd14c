"""Connections to an application's socket follow no link (portal/process/nofollow.py).

The socket lies in the application's own folder, which its user owns: it can put a link there, to
another application's socket or to one of the portal's, and the portal (root, where users are
switched) would connect to whatever the link names. The front's connections, the keeper's probe
and the removal of a stale socket refuse any link on the way. Real sockets, real links."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest

from portal.process import nofollow, probes


def listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.listen()
    return sock


def connects(path: Path) -> str:
    sock = socket.socket(socket.AF_UNIX)
    try:
        with nofollow.socket_path(str(path)) as target:
            sock.connect(target)
        return "connected"
    except OSError as exc:
        return type(exc).__name__ + (f" {exc.errno}" if exc.errno else "")
    finally:
        sock.close()


@pytest.mark.parametrize("openat2", [True, False], ids=["openat2", "walk"])
def test_a_link_to_another_socket_is_not_followed(tmp_path, monkeypatch, openat2):
    monkeypatch.setattr(nofollow, "_have_openat2", openat2)
    victim = tmp_path / "portal"
    victim.mkdir()
    secret = listener(victim / "control.sock")
    home = tmp_path / "app" / "home"
    home.mkdir(parents=True)
    own = listener(home / "app.sock")
    try:
        assert connects(home / "app.sock") == "connected"
        # The app's socket swapped for a link, and its whole home for a link to the portal's folder.
        (home / "app.sock").unlink()
        (home / "app.sock").symlink_to(victim / "control.sock")
        assert connects(home / "app.sock") != "connected"
        (tmp_path / "app" / "home").rename(tmp_path / "app" / "old")
        (tmp_path / "app" / "home").symlink_to(victim)
        (victim / "app.sock").symlink_to(victim / "control.sock")
        assert connects(tmp_path / "app" / "home" / "app.sock") != "connected"
        # Without the check the connection went through: the test can fail.
        plain = socket.socket(socket.AF_UNIX)
        plain.connect(str(tmp_path / "app" / "home" / "app.sock"))
        plain.close()
        assert connects(tmp_path / "app" / "old" / "nothing.sock").startswith("FileNotFoundError")
        (tmp_path / "file").write_text("x")
        assert connects(tmp_path / "file") == f"OSError {errno.ENOTSOCK}"
    finally:
        secret.close()
        own.close()


def test_a_stale_socket_is_not_removed_through_a_linked_folder(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(other / "app.sock"))
    dead.close()  # a socket file nobody listens on: another application's, or the portal's
    (tmp_path / "home").symlink_to(other)
    message = probes.clear_stale_socket(str(tmp_path / "home" / "app.sock"))
    assert message is not None and "cannot be checked" in message
    assert (other / "app.sock").exists()
    assert probes.clear_stale_socket(str(other / "app.sock")) is None  # its own folder: removed
    assert not (other / "app.sock").exists()


def test_the_probe_does_not_follow_a_link_to_a_server_that_answers(tmp_path):
    import threading

    server = listener(tmp_path / "real.sock")

    def answer() -> None:
        conn, _ = server.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    (tmp_path / "app.sock").symlink_to(tmp_path / "real.sock")
    try:
        assert not probes.unix_http_probe(str(tmp_path / "app.sock"), "/", 1.0)
        assert probes.unix_http_probe(str(tmp_path / "real.sock"), "/", 2.0)
    finally:
        server.close()
