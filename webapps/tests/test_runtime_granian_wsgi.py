"""granian's WSGI wrapper (webapps/runtime/serve_granian/portal_granian.py): small answers in one piece.

First the middleware alone, in this process with plain WSGI callables; then granian serving a
bare WSGI application through it under a keeper, over its unix socket, as the front reaches it.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from webapps.runtime.engines import GRANIAN_WSGI, TARGET_ENV, AppRun, engine_argv, engine_env
from webapps.tests.example_servers import http_request
from webapps.tests.runtime_helpers import RunningApp, serve_python, short_dir, start_app


def load_wrapper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("portal_granian_under_test", GRANIAN_WSGI)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Body:
    """An answer body as frameworks return it: an iterable (not a list) with a close()."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("broken while producing the body")
            yield chunk

    def close(self) -> None:
        self.closed += 1


def call(app: Any) -> tuple[list[Any], Any]:
    seen: list[Any] = []
    result = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda status, headers, exc_info=None: seen.append(
        (status, headers)))
    return seen, result


def app_with(body: Any, length: int | None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        headers = [("Content-Type", "text/plain")] + ([("Content-Length", str(length))] if length is not None else [])
        start_response("200 OK", headers)
        return body
    return app


def test_an_answer_of_known_small_length_becomes_one_piece_and_is_closed() -> None:
    wrapper = load_wrapper()
    body = Body([b"abc", b"def", b"ghi"])
    seen, result = call(wrapper.Whole(app_with(body, 9)))
    assert result == [b"abcdefghi"], "a list is what granian writes with its head in one piece"
    assert body.closed == 1, "the server closes a list it is given never: the wrapper closes the original"
    assert seen == [("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "9")])]


@pytest.mark.parametrize("length", [None, 300 * 1024], ids=["no length (a stream)", "larger than 256 KiB"])
def test_a_stream_or_a_large_answer_is_left_to_stream(length: int | None) -> None:
    wrapper = load_wrapper()
    body = Body([b"x"])
    _, result = call(wrapper.Whole(app_with(body, length)))
    assert result is body and body.closed == 0, "streamed as before: nothing read ahead of the server"


def test_a_generator_that_starts_its_answer_late_is_left_alone() -> None:
    wrapper = load_wrapper()

    def generator_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        yield b"hi"

    seen, result = call(wrapper.Whole(generator_app))
    assert seen == [] and list(result) == [b"hi"] and seen == [("200 OK", [("Content-Length", "2")])]


def test_an_answer_longer_than_it_said_streams_the_rest_and_closes_once() -> None:
    wrapper = load_wrapper()
    body = Body([b"12345", b"67890", b"abc"])
    _, result = call(wrapper.Whole(app_with(body, 4), small=8))
    assert not isinstance(result, list)
    assert b"".join(result) == b"1234567890abc" and body.closed == 0
    result.close()
    assert body.closed == 1
    assert wrapper.SMALL == 256 * 1024


def test_a_body_that_breaks_is_closed_and_the_error_reaches_the_server() -> None:
    wrapper = load_wrapper()
    body = Body([b"a", b"b"], fail_at=1)
    with pytest.raises(RuntimeError, match="broken while producing"):
        call(wrapper.Whole(app_with(body, 2)))
    assert body.closed == 1


def test_granian_serves_a_wsgi_application_through_the_wrapper() -> None:
    app = AppRun(mount="/m", directory="/srv/app", module="pkg.wsgi", callable="application",
                 socket="/run/w/app.sock", engine="granian", protocol="wsgi", python="/opt/py/bin/python")
    argv = engine_argv(app)
    assert argv[-1] == f"{GRANIAN_WSGI}:app" and engine_env(app)[TARGET_ENV] == "pkg.wsgi:application"
    assert GRANIAN_WSGI.parent.name == "serve_granian" and [p.name for p in GRANIAN_WSGI.parent.glob("*.py")] == [
        "portal_granian.py"], "granian puts the wrapper's folder on sys.path while importing it: nothing else there"
    asgi = AppRun(mount="/m", directory="/srv/app", module="main", callable="app", socket="/run/w/app.sock",
                  engine="granian", protocol="asgi")
    assert engine_argv(asgi)[-1] == "main:app" and TARGET_ENV not in engine_env(asgi)


# Served for real ------------------------------------------------------------------------------

WSGI_APP = '''
import os
import sys
import time

GATE = os.environ["GATE_FILE"]


class Slow:
    """Three chunks 50 ms apart, with a length: granian alone sends the head, then each chunk."""

    def __iter__(self):
        for chunk in (b"one-", b"two-", b"three"):
            yield chunk
            time.sleep(0.05)

    def close(self):
        pass


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return Slow()
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def stream():
            yield b"first "
            deadline = time.monotonic() + 10
            while not os.path.exists(GATE) and time.monotonic() < deadline:
                time.sleep(0.01)
            yield b"second"
        return stream()
    if path == "/big":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(300 * 1024))])
        return iter([b"x" * 1024] * 300)
    body = repr([p for p in sys.path if "serve_granian" in p]).encode() + b" " + os.getcwd().encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def first_read(sock_path: Path, path: str, timeout: float = 10) -> tuple[bytes, socket.socket]:
    """Send GET ``path``; the bytes of the first read that returns (the connection stays open)."""
    conn = socket.socket(socket.AF_UNIX)
    conn.settimeout(timeout)
    conn.connect(str(sock_path))
    conn.sendall(f"GET /w{path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return conn.recv(65536), conn


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[RunningApp, Path]]:
    base = short_dir("gw")
    (base / "app").mkdir()
    (base / "app" / "bare.py").write_text(WSGI_APP)
    gate = base / "gate"
    app = AppRun(mount="/w", directory=str(base / "app"), module="bare", callable="app", protocol="wsgi",
                 engine="granian", python=serve_python(), socket=str(base / "run" / "app.sock"),
                 env={"GATE_FILE": str(gate)})
    running = start_app(app, base / "run")
    try:
        yield running, gate
    finally:
        running.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_an_answer_made_in_chunks_leaves_in_one_piece(served: tuple[RunningApp, Path]) -> None:
    running, _ = served
    data, conn = first_read(running.socket, "/slow")
    conn.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\none-two-three"), (
        f"head and body in one read (granian streams a non-list body: the head alone first): {data!r}")


def test_an_answer_without_a_length_still_streams(served: tuple[RunningApp, Path]) -> None:
    running, gate = served
    data, conn = first_read(running.socket, "/stream")
    try:
        while b"first " not in data:
            more = conn.recv(65536)
            assert more, data
            data += more
        assert b"second" not in data, "the first chunk came while the app still waits: streamed, not buffered"
        gate.touch()
        deadline = time.monotonic() + 10
        while b"second" not in data and time.monotonic() < deadline:
            data += conn.recv(65536)
        assert b"second" in data
    finally:
        conn.close()


def test_a_large_answer_and_the_application_path(served: tuple[RunningApp, Path]) -> None:
    running, _ = served
    big = running.get("/big")
    assert big.status == 200 and big.body == b"x" * 300 * 1024
    head = http_request(running.socket, "HEAD", "/w/slow")  # read whole, then granian leaves the body out
    assert head.status == 200 and head.body == b"" and head.headers["Content-Length"] == "13"
    where = running.get("/")
    assert where.status == 200 and where.text == f"[] {running.app.directory}", (
        "the wrapper's folder is off sys.path and the application's folder is the working directory")
