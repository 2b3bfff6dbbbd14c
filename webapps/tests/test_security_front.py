"""What a hosted application or a client cannot do through the front, on both fronts.

A hosted application owns its directory, its static folder included, and writes its own
responses; a client writes the request line and the Host header. None of them may read the
portal's private files through a static folder, set the portal's own cookies, reach another
application than the one the front routes to, or put a host of its choosing into the public
503 page's link. Each test runs on the asyncio front and on nginx, with real applications
(gunicorn, uvicorn) on unix sockets and a real browser where the browser is what is protected.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import require_nginx
from webapps.tests.front_helpers import RunningFront, free_port, gunicorn, uvicorn

PORTAL_PORT = 8000
SECRET = "PORTAL-PRIVATE-3f9c1e: the secret key"
PORTAL_HOSTS = ("apps.example.test", "127.0.0.1", "[::1]")


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("hosted")
    private = d / "var"
    private.mkdir()
    (private / "secret_key").write_text(SECRET + "\n")
    static = d / "app" / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("body { color: teal }\n")
    (static / "race.txt").write_text("public\n")
    (static / "leak.txt").symlink_to(private / "secret_key")
    (static / "private").symlink_to(private)
    (static / "inside.css").symlink_to(static / "css" / "site.css")  # no link is followed, even inside
    os.mkfifo(static / "pipe.txt")  # opening it for reading would wait for a writer forever
    wsgi_sock, asgi_sock = str(d / "victim.sock"), str(d / "probe.sock")
    with gunicorn(wsgi_sock, log=d / "gunicorn.log"), uvicorn(asgi_sock, log=d / "uvicorn.log"):
        yield {"dir": d, "static": static, "secret": private / "secret_key", "wsgi": wsgi_sock, "asgi": asgi_sock}


def routes(a: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"path": "/victim", "socket": a["wsgi"], "protocol": "wsgi",
         "static": [{"url": "/victim/static", "dir": str(a["static"])}]},
        {"path": "/victim/inner", "socket": a["asgi"], "protocol": "asgi"},
        {"path": "/probe", "socket": a["asgi"], "protocol": "asgi"},
        {"path": "/stopped", "socket": a["wsgi"], "state": "stopped", "portal_page": "/webapps/stopped/"},
    ]


@pytest.fixture(scope="module", params=["asyncio", "nginx"])
def front(request: pytest.FixtureRequest, apps: dict[str, Any], tmp_path_factory) -> Iterator[RunningFront]:
    if request.param == "nginx":
        require_nginx()
    running = RunningFront(request.param, tmp_path_factory.mktemp(f"secure-{request.param}"),
                           portal_port=PORTAL_PORT, portal_hosts=PORTAL_HOSTS)
    try:
        running.start(routes(apps))
        yield running
    finally:
        running.stop()


def raw(front: RunningFront, target: str, host: str = "a") -> tuple[int, str]:
    """One request with its target exactly as written (http.client would not change it either,
    but this says so), the status and the body."""
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head[9:12]), body.decode("utf-8", "replace")


# Static files -------------------------------------------------------------------------------------


def test_a_static_file_swapped_for_a_link_to_a_secret_never_serves_the_secret(
    front: RunningFront, apps: dict[str, Any]
) -> None:
    """The application swaps a file of its static folder for a symlink to the portal's secret key
    and back, as fast as it can, while a client asks for it: checking the path and then opening it
    by name would follow the link whenever the swap falls between the two."""
    static: Path = apps["static"]
    stop = threading.Event()

    def swap() -> None:
        # A hard link of a prepared file is made as fast as a symlink: each state lasts about as long.
        source, regular, link = apps["dir"] / "race-source.txt", static / ".regular", static / ".link"
        source.write_text("public\n")
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError, FileExistsError):
                os.link(source, regular)
                os.replace(regular, static / "race.txt")
                link.symlink_to(apps["secret"])
                os.replace(link, static / "race.txt")

    swapper = threading.Thread(target=swap)
    swapper.start()
    statuses: dict[int, int] = {}
    leaked = 0
    try:
        conn = front.connection()
        deadline = time.monotonic() + 10
        for _ in range(500):
            if time.monotonic() > deadline:
                break
            conn.request("GET", "/victim/static/race.txt")
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
            statuses[response.status] = statuses.get(response.status, 0) + 1
            leaked += SECRET in body
            if response.headers.get("Connection", "").lower() == "close":
                conn.close()
                conn = front.connection()
        conn.close()
    finally:
        stop.set()
        swapper.join()
        (static / "race.txt").unlink(missing_ok=True)
        (static / "race.txt").write_text("public\n")
    print(f"{front.kind}: statuses while the file was swapped: {statuses}")
    assert leaked == 0, f"{front.kind} served the portal's secret {leaked} times: {statuses}"
    assert set(statuses) <= {200, 404}, statuses
    assert statuses.get(200), "the regular file was never served while it was there"


@pytest.mark.parametrize("path", ["leak.txt", "private/secret_key", "inside.css", "pipe.txt", "", "css/"])
def test_a_link_in_a_static_folder_is_refused_and_its_files_still_serve(front: RunningFront, path: str) -> None:
    status, body = raw(front, f"/victim/static/{path}")
    assert status == 404 and SECRET not in body, (status, body[:200])
    status, body = raw(front, "/victim/static/css/site.css")
    assert (status, body) == (200, "body { color: teal }\n")


@pytest.mark.parametrize("openat2", [True, False], ids=["openat2", "walk"])
def test_the_asyncio_fronts_open_follows_no_link_with_or_without_openat2(apps, monkeypatch, openat2) -> None:
    """Without openat2 (a kernel before 5.6, a seccomp filter) the walk of O_NOFOLLOW opens refuses
    the same: any symlink, any '..', anything but a regular file."""
    from portal.process import nofollow
    from webapps.front import files

    monkeypatch.setattr(nofollow, "_have_openat2", openat2)
    static = str(apps["static"])
    fd, st = files.open_beneath(static, "css/site.css")
    with open(fd, "rb") as fh:
        assert fh.read() == b"body { color: teal }\n" and st.st_size == 21
    for rel in ("leak.txt", "private/secret_key", "inside.css", "pipe.txt", "css", "", "../var/secret_key",
                "css/../race.txt", "css//site.css", "nothing.txt"):
        assert files.open_beneath(static, rel) is None, rel


# Cookies --------------------------------------------------------------------------------------------


def set_cookies(front: RunningFront) -> list[str]:
    conn = front.connection()
    conn.request("GET", "/victim/setcookies")
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.headers.get_all("Set-Cookie") or []


def test_an_apps_set_cookie_for_the_portals_cookies_is_removed_or_confined(front: RunningFront) -> None:
    """The asyncio front removes the Set-Cookie of the portal's names; nginx 1.22 cannot remove one
    header line by its value with its stock modules, so it confines every cookie of an application
    to the application's path and marks the portal's names SameSite=None without Secure, which
    Chromium-based browsers refuse (the browser test below)."""
    headers = set_cookies(front)
    names = sorted(h.split("=", 1)[0].strip() for h in headers)
    if front.kind == "asyncio":
        assert names == ["csrftoken", "sessionid", "theme"], headers
        assert not any("APP-CHOSEN" in h for h in headers)
    else:
        for h in headers:
            path = [a.strip() for a in h.split(";") if a.strip().lower().startswith("path=")]
            assert path in ([], ["Path=/victim"]), h  # no Path: the browser's default, under /victim
            if h.strip().startswith("portal_"):
                assert "samesite=none" in h.lower().replace(" ", "") and "secure" not in h.lower().split("samesite")[0]
        assert "sessionid=app-session; Path=/victim; HttpOnly" in headers


class EchoPortal(http.server.ThreadingHTTPServer):
    """Stands for the portal's pages on the same host, another port: records the cookies it gets."""

    daemon_threads = True

    def __init__(self) -> None:
        self.cookies: list[tuple[str, str]] = []
        portal = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                portal.cookies.append((self.path, self.headers.get("Cookie", "")))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


def test_a_browser_never_sends_an_apps_portal_cookie_to_the_portal(front: RunningFront, browser: Any) -> None:
    portal = EchoPortal()
    threading.Thread(target=portal.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{front.port}/victim/setcookies")
        for path in ("/", "/webapps/victim/", "/admin/", "/victim/", "/victim/x"):
            page.goto(f"http://127.0.0.1:{portal.server_address[1]}{path}")
        page.goto(f"http://127.0.0.1:{front.port}/victim/c")
        seen_by_app = json.loads(page.inner_text("body"))["cookies"]
    finally:
        context.close()
        portal.shutdown()
        portal.server_close()
    assert not any("APP-CHOSEN" in cookies for _, cookies in portal.cookies), portal.cookies
    # Not for want of sharing: the portal, on another port of the same host, gets the application's
    # own cookies (everywhere from the asyncio front; under the application's path from nginx).
    shared = "/" if front.kind == "asyncio" else "/victim/"
    assert "sessionid=app-session" in dict(portal.cookies)[shared], portal.cookies
    assert seen_by_app == {"sessionid": "app-session", "csrftoken": "app-csrf", "theme": "dark"}


# Paths ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/victim/..%2fprobe/",
        "/victim/..%2Fprobe/x",
        "/probe/a%2Fb",
        "/victim/%2e%2e/probe/",
        "/victim/.%2E/probe/x",
        "/victim/%2E./probe/x",
        "/victim/x/%2e/y",
        "/victim/inner/%2e%2e/x",
    ],
)
def test_an_encoded_slash_or_dot_segment_is_refused(front: RunningFront, target: str) -> None:
    status, body = raw(front, target)
    assert status == 400, (status, body[:300])
    assert "encoded" in body and "path" in body, body[:300]


def test_the_app_a_request_reaches_gets_the_path_it_was_routed_by(front: RunningFront) -> None:
    # Literal dot segments and doubled slashes are resolved (as a browser does) before routing, and
    # the application gets that path, never the raw one that names another application's mount.
    status, body = raw(front, "/victim/../probe/x?q=1")
    info = json.loads(body)
    assert (status, info["app"], info["raw_path"], info["path"]) == (200, "asgi", "/probe/x", "/probe/x")
    status, body = raw(front, "/victim//a/./b/../c")
    assert (status, json.loads(body)["path"]) == (200, "/victim/a/c")
    # Escapes that change nothing are kept or decoded alike by both fronts; the query is left alone.
    status, body = raw(front, "/victim/some%20page/%41?q=a%20b%2F")
    assert (status, json.loads(body)["path"]) == (200, "/victim/some%20page/A?q=a%20b%2F")
    status, body = raw(front, "/victim/caf%C3%A9/a%25b/c%3Fd")
    assert (status, json.loads(body)["path"]) == (200, "/victim/caf%C3%A9/a%25b/c%3Fd")


# The 503 page's link --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8081", "apps.example.test.evil.example", "[::2]"])
def test_the_503_page_never_links_to_a_host_the_portal_does_not_answer_to(front: RunningFront, host: str) -> None:
    status, _, body = front.get("/stopped/", {"Host": host})
    assert status == 503 and "application /stopped is stopped" in body, body
    assert "Its page in the portal" not in body and "evil" not in body and "::2" not in body
    status, _, body = front.get("/stopped/", {"Host": host, "Accept": "application/json"})
    assert status == 503 and "portal" not in json.loads(body), body
    status, _, body = front.get("/stopped/", {"Host": f"apps.example.test:{front.port}"})
    assert f'href="http://apps.example.test:{PORTAL_PORT}/webapps/stopped/"' in body
