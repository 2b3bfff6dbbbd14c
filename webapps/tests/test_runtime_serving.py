"""Web applications served by each engine under a keeper: real processes on real unix sockets.

The apps of this module run once each (started when a test first needs one) in the shared
runtime virtualenv, and every request carries the full path, as the front sends it.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from websockets.sync.client import unix_connect

from conftest import wait_until
from webapps.runtime.engines import AppRun
from webapps.tests.example_servers import EXAMPLES, http_request
from webapps.tests.runtime_helpers import ASGI_APP, RunningApp, serve_python, short_dir, start_app
from webapps.tests.test_examples import links

# name: (directory, module, protocol, engine, mount)
APPS = {
    "flask-gunicorn": ("flaskapp", "app", "wsgi", "gunicorn", "/flask"),
    "flask-granian": ("flaskapp", "app", "wsgi", "granian", "/flask"),
    "fastapi-uvicorn": ("fastapiapp", "app", "asgi", "uvicorn", "/fastapi"),
    "fastapi-granian": ("fastapiapp", "app", "asgi", "granian", "/fastapi"),
    "bare-uvicorn": ("bare", "bare", "asgi", "uvicorn", "/tools/bare"),
    "bare-granian": ("bare", "bare", "asgi", "granian", "/tools/bare"),
}


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    folder = short_dir("serve")
    (folder / "bare").mkdir()
    (folder / "bare" / "bare.py").write_text(ASGI_APP)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def running(base: Path) -> Iterator[Callable[[str], RunningApp]]:
    python = serve_python()
    apps: dict[str, RunningApp] = {}

    def get(name: str) -> RunningApp:
        if name not in apps:
            folder, module, protocol, engine, mount = APPS[name]
            directory = base / folder if folder == "bare" else EXAMPLES / folder
            run_dir = base / name
            app = AppRun(mount=mount, directory=str(directory), module=module, protocol=protocol, engine=engine,
                         python=python, socket=str(run_dir / "app.sock"),
                         env={"APP_DB_PATH": str(base / f"{name}.sqlite3")})
            apps[name] = start_app(app, run_dir)
        return apps[name]

    yield get
    stops = [threading.Thread(target=app.stop) for app in apps.values()]  # side by side: each waits for its app
    for thread in stops:
        thread.start()
    for thread in stops:
        thread.join(30)


@pytest.mark.parametrize("name", ["flask-gunicorn", "flask-granian", "fastapi-uvicorn", "fastapi-granian"])
def test_each_engine_serves_its_example_with_links_under_the_mount(running: Callable[[str], RunningApp],
                                                                    name: str) -> None:
    app = running(name)
    mount = app.app.mount
    # A post first: the index links to a post and its comments only when one exists.
    created = http_request(app.socket, "POST", mount + "/posts", {"title": "t", "content": "c"})
    assert created.status == 201 and created.headers["Location"] == f"{mount}/posts/{created.json()['id']}"
    index = app.get("/")
    assert index.status == 200, index.body[:300]
    urls = links(index.text)
    assert len(urls) >= 5 and all(url.startswith(mount + "/") for url in urls), urls
    if "fastapi" in name:
        docs = app.get("/docs")
        assert docs.status == 200 and f"'{mount}/openapi.json'" in docs.text
        assert app.get("/openapi.json").json()["servers"] == [{"url": mount}]


@pytest.mark.parametrize("name", ["flask-gunicorn", "flask-granian", "fastapi-uvicorn", "fastapi-granian"])
def test_the_mount_never_comes_from_a_request_header(running: Callable[[str], RunningApp], name: str) -> None:
    app = running(name)
    # gunicorn trusts SCRIPT_NAME and PATH_INFO headers from a trusted forwarder unless told not to.
    spoofed = app.get("/", headers={"SCRIPT_NAME": "/evil", "PATH_INFO": "/posts", "Script-Name": "/evil",
                                    "X-Script-Name": "/evil", "X-Forwarded-Prefix": "/evil"})
    assert spoofed.status == 200, spoofed.body[:300]
    urls = links(spoofed.text)
    assert urls and all(url.startswith(app.app.mount + "/") for url in urls), urls


@pytest.mark.parametrize("name", ["bare-uvicorn", "bare-granian"])
def test_asgi_gets_the_mount_as_root_path_and_the_whole_path(running: Callable[[str], RunningApp], name: str) -> None:
    answer = running(name).get("/posts/1")
    assert answer.text == "one root_path='/tools/bare' path=/tools/bare/posts/1"


def test_uvicorn_takes_the_fronts_forwarded_headers(running: Callable[[str], RunningApp]) -> None:
    # Only the front can reach the socket (0600 in the keeper's 0700 run directory), so its headers are trusted.
    answer = running("bare-uvicorn").get("/whoami", headers={"X-Forwarded-Proto": "https",
                                                             "X-Forwarded-For": "203.0.113.7"})
    assert answer.text == "https 203.0.113.7"


@pytest.mark.parametrize("name", list(APPS))
def test_the_socket_is_the_keeper_s_0600_in_its_run_directory(running: Callable[[str], RunningApp],
                                                               name: str) -> None:
    """The keeper binds it and hands the engine the descriptor: the engine never binds a path."""
    app = running(name)
    info = os.lstat(app.socket)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
    assert info.st_uid == os.getuid() and app.socket.parent == app.run_dir.resolve()
    assert stat.S_IMODE(os.stat(app.run_dir).st_mode) == 0o700


@pytest.mark.parametrize("name", ["bare-uvicorn", "bare-granian"])
def test_a_websocket_echoes(running: Callable[[str], RunningApp], name: str) -> None:
    app = running(name)
    with unix_connect(str(app.socket), "ws://localhost:8001/tools/bare/ws", open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "echo hello"
        ws.send("again")
        assert ws.recv(timeout=10) == "echo again"


@pytest.mark.parametrize("name", ["bare-uvicorn", "bare-granian"])
def test_ten_requests_that_each_await_one_second_take_about_one_second(
        running: Callable[[str], RunningApp], name: str) -> None:
    app = running(name)
    assert app.app.workers == 1
    answers: list[int] = []

    def one() -> None:
        answers.append(app.get("/sleep").status)

    threads = [threading.Thread(target=one) for _ in range(10)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    took = time.monotonic() - started
    assert answers == [200] * 10
    assert took < 1.9, f"ten concurrent one-second requests took {took:.2f} s under {name}"


@pytest.mark.parametrize("name", ["flask-gunicorn", "fastapi-uvicorn", "bare-granian"])
def test_kill_9_of_the_app_is_restarted_by_the_policy(running: Callable[[str], RunningApp], name: str) -> None:
    app = running(name)
    before = app.status()
    assert before["state"] == "running"
    os.kill(before["pid"], signal.SIGKILL)
    wait_until(lambda: app.status().get("pid") not in (None, before["pid"]) and app.status()["state"] == "running",
               timeout=30, message=f"{name} was not restarted: {app.status()}")
    assert app.get("/").status == 200
    exits = [e for e in app.events() if e["to"] == "exited" and e["pid"] == before["pid"]]
    assert exits and exits[-1]["signal"] == "SIGKILL" and exits[-1]["expected"] is False
    assert app.status()["restarts"] >= 1


def test_two_django_projects_run_side_by_side_each_with_its_settings(base: Path) -> None:
    """The Django example and a copy whose project package is ``othersite``, each in its own process group."""
    other = base / "othersite-project"
    shutil.copytree(EXAMPLES / "djangoapp", other, ignore=shutil.ignore_patterns("*.sqlite3", "__pycache__"))
    (other / "mysite").rename(other / "othersite")
    for source in other.rglob("*.py"):
        source.write_text(source.read_text().replace("mysite", "othersite"))
    projects = {"/django-a": (EXAMPLES / "djangoapp", "mysite"), "/django-b": (other, "othersite")}
    apps = []
    try:
        for mount, (directory, package) in projects.items():
            run_dir = base / mount.strip("/")
            app = AppRun(mount=mount, directory=str(directory), module=f"{package}.wsgi", callable="application",
                         socket=str(run_dir / "app.sock"), python=sys.executable,  # Django and gunicorn are here
                         env={"APP_DB_PATH": str(base / f"{package}.sqlite3"),
                              "DJANGO_SECRET_KEY": f"{package}-" + "k" * 50},
                         secret_env=["DJANGO_SECRET_KEY"])
            apps.append(start_app(app, run_dir))
        a, b = apps
        assert a.status()["pid"] != b.status()["pid"]
        created = http_request(a.socket, "POST", "/django-a/posts", {"title": "only in a", "content": "x"})
        assert created.status == 201 and created.headers["Location"].startswith("/django-a/posts/")
        assert [p["title"] for p in b.get("/posts").json()] == [], "each project has its own database"
        for app in apps:
            login = app.get("/admin/login/")
            assert login.status == 200
            assert f"{app.app.mount}/static/admin/css/base.css" in links(login.text)
            assert all(url.startswith(app.app.mount + "/") for url in links(app.get("/").text))
        spec_b = (base / "django-b" / "spec.json").read_text()
        assert "othersite.wsgi:application" in spec_b
        assert "othersite-kkkk" not in (base / "django-b" / "status.json").read_text(), "the secret is masked"
    finally:
        for app in apps:
            app.stop()
