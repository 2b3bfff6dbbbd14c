"""Both fronts (the asyncio one and nginx), driven with real requests to real apps on unix sockets.

Each test runs twice, once per front: gunicorn serves a WSGI app and uvicorn an ASGI app
(front_apps.py), each on its own socket; the front follows a routes file as the portal writes it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from webapps.tests.front_helpers import FRONTS, RunningFront, gunicorn, uvicorn, wait_for

MB = 1024 * 1024
PORTAL_PORT = 8000
PORTAL_COOKIE_HEADER = "sessionid=app-session; portal_sessionid=ADMIN; csrftoken=app-csrf; portal_csrftoken=ADMINCSRF"


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("apps")
    wsgi_sock, asgi_sock, refused_sock = str(d / "wsgi.sock"), str(d / "asgi.sock"), str(d / "refused.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(refused_sock)  # the file exists, nothing listens: connect is refused
    static = d / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("body { color: teal }\n")
    (static / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (d / "secret.txt").write_text("outside the static directory\n")
    # An application that answers nonsense: the front's 502.
    garbage = socket.socket(socket.AF_UNIX)
    garbage.bind(str(d / "garbage.sock"))
    garbage.listen(16)

    def answer_nonsense() -> None:
        while True:
            try:
                conn, _ = garbage.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    # A status below 100 (the asyncio front refuses it) and a header line without
                    # its colon (nginx refuses that; it takes a bad status line for HTTP/0.9).
                    conn.sendall(b"HTTP/1.1 099 Broken\r\nA header without its colon\r\n\r\n")
                except OSError:
                    pass

    threading.Thread(target=answer_nonsense, daemon=True).start()
    # An application that accepts and closes without a word, as a worker does as it dies.
    silent = socket.socket(socket.AF_UNIX)
    silent.bind(str(d / "silent.sock"))
    silent.listen(16)

    def close_at_once() -> None:
        while True:
            try:
                conn, _ = silent.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)

    threading.Thread(target=close_at_once, daemon=True).start()
    try:
        with gunicorn(wsgi_sock, log=d / "gunicorn.log"), uvicorn(asgi_sock, log=d / "uvicorn.log"):
            yield {"dir": d, "wsgi": wsgi_sock, "asgi": asgi_sock, "refused": refused_sock, "static": str(static)}
    finally:
        garbage.close()
        silent.close()


def base_routes(b: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"path": "/w", "socket": b["wsgi"], "protocol": "wsgi", "static": [{"url": "/w/static", "dir": b["static"]}]},
        {"path": "/w/inner", "socket": b["asgi"], "protocol": "asgi"},
        {"path": "/a", "socket": b["asgi"], "protocol": "asgi"},
        {"path": "/stopped", "socket": b["wsgi"], "state": "stopped", "reason": "stopped by ada",
         "portal_page": "/webapps/stopped/"},
        {"path": "/starting", "socket": b["wsgi"], "state": "starting"},
        {"path": "/backoff", "socket": b["wsgi"], "state": "backoff", "reason": "exited with code 1"},
        {"path": "/fatal", "socket": b["wsgi"], "state": "fatal", "reason": "ImportError: no module named app"},
        {"path": "/dead", "socket": str(b["dir"] / "missing.sock")},
        {"path": "/refused", "socket": b["refused"]},
        {"path": "/garbage", "socket": str(b["dir"] / "garbage.sock")},
        {"path": "/silent", "socket": str(b["dir"] / "silent.sock")},
        # Asked for by the figures test alone: its count tells when earlier requests are counted.
        {"path": "/figures-mark", "socket": b["wsgi"], "state": "stopped"},
    ]


@pytest.fixture(scope="module", params=FRONTS)
def front(request: pytest.FixtureRequest, backends: dict[str, Any], tmp_path_factory) -> Iterator[RunningFront]:
    running = RunningFront(request.param, tmp_path_factory.mktemp(f"front-{request.param}"), head_timeout=2,
                           portal_port=PORTAL_PORT, portal_hosts=("apps.example.test", "127.0.0.1", "[::1]"))
    try:
        running.start(base_routes(backends))
        yield running
    finally:
        running.stop()  # also when it failed to start: no front is left behind


# Routing ----------------------------------------------------------------------------------------


def test_it_routes_by_the_longest_segment_prefix(front: RunningFront) -> None:
    assert front.get_json("/w/x")[1]["app"] == "wsgi"
    assert front.get_json("/w/inner/x")[1]["app"] == "asgi"
    assert front.get_json("/w/innerx")[1]["app"] == "wsgi"
    assert front.get("/wx")[0] == 404
    assert front.get("/a/")[0] == 200


def test_a_mount_without_its_slash_redirects_keeping_the_query(front: RunningFront) -> None:
    status, headers, _ = front.get("/w?x=1&y=2")
    assert status == 301
    assert headers["Location"].endswith("/w/?x=1&y=2")
    status, headers, _ = front.get("/w/inner")
    assert (status, headers["Location"].rsplit(str(front.port), 1)[-1]) == (301, "/w/inner/")


def test_the_app_receives_the_full_path_and_query(front: RunningFront) -> None:
    status, info = front.get_json("/w/some/page?q=a%20b")
    assert status == 200
    assert info["path"] == "/w/some/page?q=a%20b"  # gunicorn's RAW_URI: nothing stripped or re-encoded
    assert info["path_info"] == "/w/some/page"
    assert info["script_name"] == ""  # the mount is the app's business (SCRIPT_NAME from its environment)
    assert front.get_json("/a/x/y")[1]["path"] == "/a/x/y"


def test_it_sets_the_forwarded_headers(front: RunningFront) -> None:
    spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    _, info = front.get_json("/w/h", spoofed)
    headers = info["headers"]
    # One address, the front's peer: uvicorn (trusting the front) takes the first address of the
    # list as the client, so an appended list would let the client choose it.
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{front.port}"
    assert headers["host"] == f"127.0.0.1:{front.port}"  # the port is kept ($http_host, not $host)


def test_no_other_proxy_header_from_the_client_reaches_an_app(front: RunningFront) -> None:
    # Each of these makes some framework or server believe in https, another client address or
    # another mount (gunicorn trusts X-Forwarded-Ssl; Werkzeug's ProxyFix X-Forwarded-Prefix).
    spoofed = {
        "Forwarded": "for=203.0.113.9;proto=https",
        "X-Forwarded-Ssl": "on",
        "X-Forwarded-Protocol": "https",
        "X-Forwarded-Scheme": "https",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Prefix": "/elsewhere",
        "X-Scheme": "https",
        "X-Url-Scheme": "https",
        "X-Real-Ip": "203.0.113.9",
        "Front-End-Https": "on",
        "X-Custom": "kept",
    }
    _, info = front.get_json("/w/h", spoofed)
    headers = info["headers"]
    assert headers["x-custom"] == "kept"
    leaked = sorted(name for name in spoofed if name.lower() in headers and name != "X-Custom")
    assert leaked == []


def test_the_portal_cookies_never_reach_an_app_and_its_own_do(front: RunningFront) -> None:
    _, info = front.get_json("/w/c", {"Cookie": PORTAL_COOKIE_HEADER})
    assert info["cookies"] == {"sessionid": "app-session", "csrftoken": "app-csrf"}
    assert "ADMIN" not in json.dumps(info)
    _, info = front.get_json("/w/c", {"Cookie": "portal_sessionid=ADMIN; portal_sessionid=AGAIN"})
    assert "cookie" not in info["headers"]
    _, info = front.get_json("/w/c", {"Cookie": "xportal_sessionid=keep; portal_csrftoken=ADMIN; a=1"})
    assert info["cookies"] == {"xportal_sessionid": "keep", "a": "1"}


# Pages the front answers itself -----------------------------------------------------------------


@pytest.mark.parametrize("host", ["apps.example.test", "127.0.0.1", "[::1]"])
def test_a_stopped_apps_503_links_to_its_page_in_the_portal_on_the_host_it_came_by(front, host) -> None:
    status, _, body = front.get("/stopped/", {"Host": f"{host}:{front.port}"})
    link = f"http://{host}:{PORTAL_PORT}/webapps/stopped/"
    assert status == 503 and f'<a href="{link}">Its page in the portal</a>' in body, body
    status, _, body = front.get("/stopped/", {"Host": f"{host}:{front.port}", "Accept": "application/json"})
    assert (status, json.loads(body)["portal"]) == (503, link)
    # An application without a page in the routes file: no link.
    assert "Its page in the portal" not in front.get("/fatal/", {"Host": f"{host}:{front.port}"})[2]


@pytest.mark.parametrize("host", ['ev"il.example', "a<b>.example", "x/y"])
def test_a_host_that_is_not_a_plain_name_never_goes_into_the_link(front, host) -> None:
    status, _, body = front.get("/stopped/", {"Host": host})
    assert status in (400, 503), (status, body)
    assert "<b>" not in body.replace("<b>/stopped</b>", "").replace("<b>stopped</b>", "") and 'ev"il' not in body
    if status == 503:
        assert "Its page in the portal" not in body and "application /stopped is stopped" in body


@pytest.mark.parametrize(
    ("path", "state", "retry"),
    [
        ("/stopped/", "stopped", False),
        ("/starting/x", "starting", True),
        ("/backoff/", "backoff", True),
        ("/fatal/", "fatal", False),
    ],
)
def test_an_app_that_is_not_running_answers_503_saying_which_and_why(front, path, state, retry) -> None:
    status, headers, body = front.get(path, {"Accept": "text/html,application/json;q=0.9"})
    assert status == 503
    assert headers["Content-Type"].startswith("text/html")
    assert f"application {path.split('/')[1] and '/' + path.split('/')[1]} is {state}" in body
    assert ("Retry-After" in headers) is retry
    status, headers, body = front.get(path, {"Accept": "application/json"})
    data = json.loads(body)
    assert (status, headers["Content-Type"]) == (503, "application/json")
    assert data["application"] == "/" + path.split("/")[1]
    assert data["state"] == state
    assert data["reason"]
    if state == "fatal":
        assert data["reason"] == "ImportError: no module named app"


def test_an_unknown_path_answers_404_in_html_or_json(front: RunningFront) -> None:
    status, headers, body = front.get("/nothing/here")
    assert status == 404 and "no application is mounted" in body and headers["Content-Type"].startswith("text/html")
    status, headers, body = front.get("/nothing", {"Accept": "application/json"})
    assert status == 404 and json.loads(body)["error"] == "no application is mounted at this path"


@pytest.mark.parametrize("path", ["/dead/", "/refused/x"])
def test_a_running_app_whose_socket_is_gone_or_refuses_answers_503_retry(front: RunningFront, path: str) -> None:
    """No connection can be made: the app is "running" for the portal but its process is gone, as
    for the moment after a kill -9 before the keeper restarts it. That is a 503 with Retry-After
    (as for a starting app), not a 502, which is kept for an app that answers wrongly (below). An
    app that accepts and closes without a byte of answer (a worker dying with its master) is the
    same case."""
    status, headers, body = front.get(path)
    assert status == 503 and headers["Retry-After"] == "1"
    assert "Traceback" not in body
    assert f"application /{path.split('/')[1]} is not answering on its socket" in body
    assert "(restarting?)" in body
    data = json.loads(front.get(path, {"Accept": "application/json"})[2])
    assert data["state"] == "running" and data["application"] == "/" + path.split("/")[1]
    assert "not answering on its socket (restarting?)" in data["reason"]
    assert front.get("/silent/")[0] == 503


def test_a_running_app_that_answers_nonsense_answers_502(front: RunningFront) -> None:
    status, headers, body = front.get("/garbage/")
    assert status == 502 and "Retry-After" not in headers
    assert "application /garbage is running but does not answer on its socket" in body


# Static files -----------------------------------------------------------------------------------


def test_static_files_are_served_with_their_types_and_no_traversal(front: RunningFront) -> None:
    status, headers, body = front.get("/w/static/css/site.css")
    assert (status, body) == (200, "body { color: teal }\n")
    assert headers["Content-Type"].startswith("text/css")
    status, headers, _ = front.get("/w/static/logo.png")
    assert (status, headers["Content-Type"], headers["Content-Length"]) == (200, "image/png", "108")
    for attempt in ("/w/static/../secret.txt", "/w/static/%2e%2e/secret.txt", "/w/static/css/..%2f..%2fsecret.txt"):
        status, _, body = front.get(attempt)
        assert "outside the static directory" not in body, attempt
    assert front.get("/w/static/nope.css")[0] == 404


# Streaming ----------------------------------------------------------------------------------------


def _sample_rss(front: RunningFront, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], front.rss())
        time.sleep(0.02)


def _measure(front: RunningFront, work: Any) -> tuple[Any, int]:
    baseline = front.rss()
    peak = [baseline]
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(front, stop, peak))
    sampler.start()
    try:
        result = work()
    finally:
        stop.set()
        sampler.join()
    return result, peak[0] - baseline


@pytest.mark.parametrize("chunked", [False, True])
def test_a_50_mb_upload_streams_with_bounded_memory(front: RunningFront, chunked: bool) -> None:
    piece = bytes(range(256)) * 256  # 64 KiB

    def body() -> Iterator[bytes]:
        for _ in range(50 * MB // len(piece)):
            yield piece

    def upload() -> dict[str, Any]:
        conn = front.connection(timeout=120)
        headers = {"Content-Type": "application/octet-stream"}
        if not chunked:
            headers["Content-Length"] = str(50 * MB)
        conn.request("POST", "/w/upload", body=body(), headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())

    result, growth = _measure(front, upload)
    assert result["received"] == 50 * MB
    assert growth < 50 * MB, f"the front grew by {growth / MB:.1f} MB"
    print(f"{front.kind} upload ({'chunked' if chunked else 'length'}): RSS growth {growth / MB:.1f} MB")


@pytest.mark.parametrize("chunked", [False, True])
def test_a_50_mb_download_streams_with_bounded_memory(front: RunningFront, chunked: bool) -> None:
    def download() -> int:
        conn = front.connection(timeout=120)
        conn.request("GET", "/w/download?mb=50" + ("&chunked=1" if chunked else ""))
        response = conn.getresponse()
        assert response.status == 200
        total = 0
        while True:
            data = response.read(256 * 1024)
            if not data:
                return total
            total += len(data)
            time.sleep(0.001)  # a client slower than the app: the front must not hoard the difference

    total, growth = _measure(front, download)
    assert total == 50 * MB
    assert growth < 50 * MB, f"the front grew by {growth / MB:.1f} MB"
    print(f"{front.kind} download ({'chunked' if chunked else 'length'}): RSS growth {growth / MB:.1f} MB")


# ASGI -------------------------------------------------------------------------------------------


def test_a_websocket_echoes_through_the_front(front: RunningFront) -> None:
    with ws_connect(f"ws://127.0.0.1:{front.port}/a/ws", open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "echo: hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=10) == b"\x00\x01binary"


def test_ten_asgi_requests_that_each_sleep_a_second_finish_in_about_a_second(front: RunningFront) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda _: front.get("/a/sleep")[0], range(10)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 10
    assert elapsed < 2.5, f"ten concurrent one-second requests took {elapsed:.2f} s"
    print(f"{front.kind}: ten concurrent one-second ASGI requests in {elapsed:.2f} s")


# Reloads and keep-alive ---------------------------------------------------------------------------


def test_a_routes_change_applies_within_a_second_without_dropping_an_in_flight_request(
    front: RunningFront, backends: dict[str, Any], tmp_path: Path
) -> None:
    started = tmp_path / "sleep-started"
    conn = front.connection()
    conn.request("GET", "/a/x")
    first = conn.getresponse()
    assert first.status == 200
    first.read()
    sock_before = conn.sock
    result: dict[str, Any] = {}

    def slow() -> None:
        conn.request("GET", f"/a/sleep?started={started}")  # the same kept-alive connection
        response = conn.getresponse()
        result["status"] = response.status
        result["body"] = json.loads(response.read())
        result["close"] = response.headers.get("Connection", "").lower() == "close"

    thread = threading.Thread(target=slow)
    thread.start()
    wait_for(started.exists, timeout=10, what="the slow request at the app")  # in flight across the change
    took = front.set_routes([*base_routes(backends), {"path": "/added", "socket": backends["wsgi"]}])
    thread.join(10)
    assert result["status"] == 200 and result["body"]["path"] == "/a/sleep"
    assert took < 1.5, f"the new routes took {took:.2f} s to apply"
    print(f"{front.kind}: new routes answered {took:.2f} s after the file was written")
    assert front.get_json("/added/x")[1]["path"] == "/added/x"
    if front.kind == "nginx":
        # nginx's old worker answered the request in flight and then closes the connection, with
        # or without saying so first (the keep-alive race every client retries): a new one.
        conn.close()
    conn.request("GET", "/a/after")
    assert conn.getresponse().status == 200
    if front.kind == "asyncio":
        # The asyncio front keeps the client's connection across reloads.
        assert conn.sock is sock_before and not result["close"]
    conn.close()
    front.set_routes(base_routes(backends))


def test_keep_alive_carries_many_requests_on_one_connection(front: RunningFront) -> None:
    front.wait_old_workers_gone()  # an earlier test's routes change reloaded nginx
    conn = front.connection()
    conn.request("GET", "/w/hello")
    conn.getresponse().read()
    sock = conn.sock
    for i in range(50):
        conn.request("GET", f"/w/n{i}")
        response = conn.getresponse()
        assert json.loads(response.read())["path"] == f"/w/n{i}"
    assert conn.sock is sock
    conn.close()


class CountingApp(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """An HTTP/1.1 application on a unix socket that counts the connections it accepts."""

    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.accepted = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as every engine the portal runs

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "front"  # a unix socket's peer has no address

        super().__init__(path, Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        self.accepted += 1
        return request


def test_the_front_keeps_its_connections_to_the_application_open(
    front: RunningFront, backends: dict[str, Any]
) -> None:
    # A connection per request would cost the app an accept and the front a connect each time
    # (nginx: an upstream with keepalive, HTTP/1.1 and no "Connection: close"; the asyncio front: its Pool).
    app = CountingApp(str(backends["dir"] / f"counting-{front.kind}.sock"))
    threading.Thread(target=app.serve_forever, daemon=True).start()
    try:
        before = front.worker_pids()
        front.set_routes([*base_routes(backends), {"path": "/counted", "socket": app.server_address}])
        front.wait_old_workers_gone(before)  # else a connection may land on a worker with the old routes
        conn = front.connection()
        for i in range(25):  # one client connection, then a new one for each request
            conn.request("GET", f"/counted/{i}")
            assert conn.getresponse().read() == b"ok"
        conn.close()
        for i in range(25):
            assert front.get(f"/counted/new{i}")[:3:2] == (200, "ok")
        assert 1 <= app.accepted <= 2, f"{front.kind}: the app accepted {app.accepted} connections for 50 requests"
    finally:
        app.shutdown()
        app.server_close()
        front.set_routes(base_routes(backends))


def test_a_large_response_head_passes_through(front: RunningFront) -> None:
    # nginx's default proxy_buffer_size (4k) answered a head over 4 KB with 502; the asyncio front takes 64 KiB.
    status, headers, body = front.get("/w/bighead")
    assert (status, body, headers["X-Big"]) == (200, "ok", "b" * 10000)


# Bad input ------------------------------------------------------------------------------------


def _raw(front: RunningFront, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", front.port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /w/x HTTP/1.1 extra\r\nHost: a\r\n\r\n",
        b"GET w/x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"G(T /w/x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /w/x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
        b"GET /w/x HTTP/1.1\r\n\r\n",  # no Host
        b"GET /w/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /w/x HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
        b"GET /w/x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 100_000 + b"\r\n\r\n",
    ],
    ids=[
        "garbage",
        "extra-word",
        "relative-target",
        "bad-method",
        "bad-header",
        "no-host",
        "smuggling",
        "bad-length",
        "oversized-head",
    ],
)
def test_a_malformed_request_gets_400_never_a_crash(front: RunningFront, data: bytes) -> None:
    answer = _raw(front, data)
    status = int(answer[9:12])
    assert 400 <= status < 500 and status != 404, answer[:200]
    assert b"Traceback" not in answer
    assert front.get("/w/still-alive")[0] == 200


def test_a_head_that_never_ends_is_cut_off(front: RunningFront) -> None:
    started = time.monotonic()
    answer = _raw(front, b"GET /w/slow HTTP/1.1\r\nHost: a\r\nX-Slow: ", timeout=15)
    elapsed = time.monotonic() - started
    assert elapsed < 6, f"the connection stayed open {elapsed:.1f} s"
    if front.kind == "asyncio":
        assert answer.startswith(b"HTTP/1.1 408")
    else:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408")  # nginx closes without answering


@pytest.fixture(scope="module", params=FRONTS)
def impatient_front(request: pytest.FixtureRequest, backends: dict[str, Any], tmp_path_factory) -> Iterator[RunningFront]:
    """A front whose idle timeout is 3 s (300 s by default), kept apart so that a slow machine
    cannot make the other tests' exchanges look stalled."""
    running = RunningFront(request.param, tmp_path_factory.mktemp(f"idle-{request.param}"), idle_timeout=3)
    try:
        running.start(base_routes(backends))
        yield running
    finally:
        running.stop()


def test_a_stalled_upload_is_cut_off(impatient_front: RunningFront) -> None:
    front = impatient_front
    # A client that starts a body and then sends nothing must not hold the front and the app forever.
    started = time.monotonic()
    _raw(front, b"POST /w/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 70000, timeout=30)
    elapsed = time.monotonic() - started
    assert 2.5 < elapsed < 10, f"the stalled upload was closed after {elapsed:.1f} s (idle timeout 3 s)"
    assert front.get("/w/still-alive")[0] == 200


def test_an_app_that_never_answers_is_cut_off(impatient_front: RunningFront) -> None:
    front = impatient_front
    # On a WSGI route: nginx gives an ASGI route the websocket's long read timeout for every request
    # (proxy_read_timeout takes no variable); the asyncio front tells the two apart.
    started = time.monotonic()
    answer = _raw(front, b"GET /w/hang HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=30)
    elapsed = time.monotonic() - started
    assert 2.5 < elapsed < 10, f"the silent exchange was closed after {elapsed:.1f} s (idle timeout 3 s)"
    assert answer.startswith(b"HTTP/1.1 504"), answer[:200]
    assert b"did not answer in time" in answer
    assert b"Traceback" not in answer
    assert front.get("/w/still-alive")[0] == 200


# Figures --------------------------------------------------------------------------------------


def test_the_front_counts_requests_errors_and_latency_per_app(front: RunningFront) -> None:
    def figures() -> dict[str, Any]:
        try:
            return json.loads(Path(front.metrics_file).read_text())["apps"]
        except (OSError, ValueError):
            return {}

    # Earlier tests' requests must all be counted before the baseline is taken. Each front counts
    # requests in the order they end (nginx: its worker's log, flushed when a worker retires, read in
    # order), so once one request to /figures-mark, which no other test asks for, is counted, every
    # earlier request is too.
    front.wait_old_workers_gone()
    assert front.get("/figures-mark/")[0] == 503
    start = wait_for(lambda: (f := figures()).get("/figures-mark", {}).get("requests") == 1 and f,
                     what="the marker request counted")
    before = start.get("/w", {"requests": 0, "errors_5xx": 0})
    stopped_before = start.get("/stopped", {"errors_5xx": 0})["errors_5xx"]
    assert front.get("/stopped/")[0] == 503
    for _ in range(7):
        assert front.get("/w/count")[0] == 200
    for _ in range(3):
        assert front.get("/w/count?fail=1")[0] == 500
    wait_for(lambda: figures().get("/w", {}).get("requests", 0) >= before["requests"] + 10, what="figures written")
    after = figures()["/w"]
    assert after["requests"] - before["requests"] == 10
    assert after["errors_5xx"] - before["errors_5xx"] == 3
    assert sum(after["latency_ms"]["counts"]) == after["requests"]
    assert after["latency_ms"]["p50"] is not None
    # The front's own 503 for a stopped app counts as that app's error.
    assert figures()["/stopped"]["errors_5xx"] == stopped_before + 1


def test_a_broken_routes_file_keeps_the_routes_in_force(front: RunningFront, backends: dict[str, Any]) -> None:
    said = front.log.stat().st_size
    front.routes_file.write_text("{not json")
    # The front has read the broken file: it says it keeps the routes in force.
    wait_for(lambda: "keeping the current routes" in front.log.read_bytes()[said:].decode("utf-8", "replace"),
             timeout=10, what="the front saying it keeps its routes")
    assert front.get_json("/w/still")[1]["path"] == "/w/still"
    assert front.process.poll() is None
    front.set_routes(base_routes(backends))


def test_an_http_10_client_gets_a_chunked_answer_unchunked(front: RunningFront) -> None:
    answer = _raw(front, b"GET /w/download?mb=1&chunked=1 HTTP/1.0\r\n\r\n", timeout=30)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" not in head.lower()
    assert len(body) == MB and body[:256] == bytes(range(256))


def test_an_upload_that_expects_100_continue_gets_it(front: RunningFront) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as s:
        s.sendall(b"POST /w/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = s.recv(100)
        assert interim.startswith(b"HTTP/1.1 100")
        s.sendall(b"hello")
        answer = b""
        while b"sha256" not in answer:
            answer += s.recv(65536)
    assert b'"received": 5' in answer


def test_a_head_request_gets_headers_only(front: RunningFront) -> None:
    conn = front.connection()
    conn.request("HEAD", "/w/download?mb=1")
    response = conn.getresponse()
    assert response.status == 200 and response.headers["Content-Length"] == str(MB)
    assert response.read() == b""
    conn.request("GET", "/w/after-head")  # the connection is still in step
    assert json.loads(conn.getresponse().read())["path"] == "/w/after-head"
    conn.close()


def test_a_malformed_chunked_upload_gets_400(front: RunningFront) -> None:
    answer = _raw(
        front, b"POST /w/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert front.get("/w/still-alive")[0] == 200
