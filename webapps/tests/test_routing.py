"""The routes file follows the definitions and their states, and both fronts follow the file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from portal.process.states import FATAL, RUNNING, STOPPED
from webapps import adapter, routing
from webapps.models import WebApp
from webapps.tests.front_helpers import FRONTS, RunningFront, gunicorn, wait_for
from webapps.tests.test_webapp_start_stop import webapp_processes  # noqa: F401 (a fixture)
from webapps.tests.webapp_factories import app_dir, make_webapp

MB = 1024 * 1024


@pytest.fixture
def routes_file(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.WEBAPPS_ROUTES_FILE = tmp_path / "front" / "routes.json"
    return settings.WEBAPPS_ROUTES_FILE


def entries(path: Path) -> dict[str, dict[str, Any]]:
    return {a["path"]: a for a in json.loads(path.read_text())["apps"]}


@pytest.mark.django_db
def test_a_saved_definition_is_in_the_routes_file_as_the_portal_shows_it(
    routes_file: Path, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    with django_capture_on_commit_callbacks(execute=True):
        app = make_webapp(app_dir(tmp_path), name="/shop/api", protocol="asgi", static_files={"/static": str(static)})
    data = json.loads(routes_file.read_text())
    assert data["version"] == 1
    assert data["strip_cookies"] == list(settings.PORTAL_COOKIE_NAMES)
    assert data["portal_port"] == settings.PORTAL_PORT == 8000  # the fronts' 503 page links to the app's page
    assert data["apps"] == [{
        "path": "/shop/api",
        "socket": str(adapter.socket_path(app)),
        "state": STOPPED,
        "reason": "",
        "protocol": "asgi",
        "static": [{"url": "/shop/api/static", "dir": str(static)}],
        "portal_page": "/webapps/shop/api/",
    }]
    # No temporary file is left beside it.
    assert sorted(p.name for p in routes_file.parent.iterdir() if not p.name.startswith(".routes.lock")) == [
        "routes.json"
    ]


@pytest.mark.django_db
def test_a_failed_app_shows_its_last_errors_first_line_and_a_deleted_one_leaves(
    routes_file: Path, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        app = make_webapp(app_dir(tmp_path))
    with django_capture_on_commit_callbacks(execute=True):
        app.state = FATAL
        app.last_error = "ModuleNotFoundError: No module named 'hello'\nTraceback (most recent call last): ..."
        app.save()
    entry = entries(routes_file)["/hello"]
    assert (entry["state"], entry["reason"]) == (FATAL, "ModuleNotFoundError: No module named 'hello'")
    with django_capture_on_commit_callbacks(execute=True):
        app.state = STOPPED
        app.save()
    assert entries(routes_file)["/hello"]["reason"] == ""  # an old error is not the reason for a stop
    with django_capture_on_commit_callbacks(execute=True):
        app.delete()
    assert entries(routes_file) == {}


@pytest.mark.django_db
def test_the_public_503_page_never_shows_the_apps_own_output(routes_file: Path, tmp_path: Path) -> None:
    make_webapp(app_dir(tmp_path), state="backoff",
                last_error="exited after 0.21 s: exit code 1; restarting in 1 s; last output: "
                           "OperationalError: cannot connect to postgres://app:S3cret@db/app")
    routing.sync_routes()
    reason = entries(routes_file)["/hello"]["reason"]
    assert reason == "exited after 0.21 s: exit code 1; restarting in 1 s"
    assert "S3cret" not in routes_file.read_text()


@pytest.mark.django_db
def test_a_refused_start_is_the_reason_of_a_stopped_apps_503(routes_file: Path, tmp_path: Path) -> None:
    make_webapp(app_dir(tmp_path), state="stopped",
                last_error="Start refused: there is no module nosuchmod in /srv/app: check the application name\nmore")
    make_webapp(app_dir(tmp_path), name="/raising", state="stopped",
                last_error="Start refused: importing hello failed: RuntimeError: postgres://app:S3cret@db (x)")
    make_webapp(app_dir(tmp_path), name="/old", state="stopped", last_error="exited after 2 s: exit code 1")
    make_webapp(app_dir(tmp_path), name="/flask", state="stopped",
                last_error="Start refused: /srv/py/bin/python lacks the package 'flask' that app.py imports: give a "
                           "requirements file (this directory has requirements.txt: /srv/flaskapp/requirements.txt) "
                           "or a Python executable that has flask")
    routing.sync_routes()
    found = entries(routes_file)
    assert found["/flask"]["reason"] == ("Start refused: its Python lacks the package 'flask' that app.py imports "
                                         "(the portal's page of the application says how to give it)")
    assert found["/hello"]["reason"] == ("Start refused: there is no module nosuchmod in /srv/app: check the "
                                         "application name")
    # The exception an import raised is the application's own words: not on the public page.
    assert found["/raising"]["reason"] == ("Start refused: importing hello failed (the portal's page of the "
                                           "application says why)")
    assert "S3cret" not in routes_file.read_text()
    assert found["/old"]["reason"] == ""


@pytest.mark.django_db
def test_the_503_page_links_only_to_the_names_the_portal_answers_to(routes_file: Path, tmp_path: Path,
                                                                     settings) -> None:  # type: ignore[no-untyped-def]
    # ALLOWED_HOSTS, less what is no name ("*" would let any Host header into the link).
    settings.ALLOWED_HOSTS = ["portal.example", ".Example.org", "*", "127.0.0.1", "[::1]", "bad host"]
    make_webapp(app_dir(tmp_path))
    routing.sync_routes()
    assert json.loads(routes_file.read_text())["portal_hosts"] == ["portal.example", ".example.org", "127.0.0.1",
                                                                   "[::1]"]


@pytest.mark.django_db
def test_the_file_is_written_only_when_its_content_changes(routes_file: Path, tmp_path: Path) -> None:
    make_webapp(app_dir(tmp_path))
    assert routing.sync_routes() is True
    before = routes_file.stat()
    assert routing.sync_routes() is False
    after = routes_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


# Through a real front ---------------------------------------------------------------------------


@pytest.fixture(params=FRONTS)
def front(request: pytest.FixtureRequest, tmp_path: Path, settings) -> Any:  # type: ignore[no-untyped-def]
    running = RunningFront(request.param, tmp_path)
    settings.WEBAPPS_ROUTES_FILE = running.routes_file
    try:
        running.start([])
        yield running
    finally:
        running.stop()


def steady(front: RunningFront, path: str, status: int) -> None:
    """Wait until ``path`` answers ``status`` three times in a row: right after nginx's reload an
    old worker may still take a new connection or two with the previous config."""
    streak = [0]

    def three() -> bool:
        streak[0] = streak[0] + 1 if state_of(front, path)[0] == status else 0
        return streak[0] >= 3

    wait_for(three, timeout=5, what=f"{path} answering {status}")


def state_of(front: RunningFront, path: str) -> tuple[int, dict[str, Any]]:
    status, _, body = front.get(path, {"Accept": "application/json"})
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"body": body[:200]}


@pytest.mark.django_db(transaction=True)
def test_both_fronts_follow_the_definitions_within_a_second_without_cutting_a_download(
    front: RunningFront, tmp_path: Path
) -> None:
    app = make_webapp(app_dir(tmp_path), name="/flask")
    sock = adapter.socket_path(app)
    sock.parent.mkdir(parents=True, exist_ok=True)
    # A stopped application: the 503 page says which and why, in JSON or HTML; elsewhere 404.
    steady(front, "/flask/", 503)
    status, body = state_of(front, "/flask/x")
    assert body["application"] == "/flask" and body["state"] == STOPPED
    assert "stopped" in body["reason"]
    status, _, html = front.get("/flask/x", {"Accept": "text/html"})
    assert status == 503 and "<b>stopped</b>" in html
    assert state_of(front, "/nothing/")[0] == 404

    # Running: the front passes requests to the app's socket.
    with gunicorn(str(sock), log=tmp_path / "gunicorn.log"):
        app.state = RUNNING
        app.save()
        steady(front, "/flask/hello", 200)

        # A long download keeps going while a definition is added, and the new one is served
        # within a second.
        result: dict[str, Any] = {}
        flowing = threading.Event()  # the first piece of the download has arrived

        def download() -> None:
            conn = front.connection()
            conn.request("GET", "/flask/download?mb=20&chunked=1")
            response = conn.getresponse()
            got = 0
            while piece := response.read(256 * 1024):
                got += len(piece)
                flowing.set()
                time.sleep(0.05)  # a slow reader (about 4 s): the download spans the change
            result["status"], result["bytes"] = response.status, got
            conn.close()

        thread = threading.Thread(target=download, daemon=True)
        thread.start()
        assert flowing.wait(10), f"the download did not start within 10 s: {result}"
        started = time.monotonic()
        WebApp.objects.create(name="/added", directory=str(tmp_path), module="hello", protocol="asgi")
        wait_for(lambda: state_of(front, "/added/")[1].get("application") == "/added", timeout=5,
                 what="the new definition on the front")
        took = time.monotonic() - started
        assert thread.is_alive(), f"the download ended before the change ({took:.2f} s): {result}"
        thread.join(60)
        assert result == {"status": 200, "bytes": 20 * MB}
        assert took < 1.0, f"the new definition reached the {front.kind} front after {took:.2f} s"
        print(f"{front.kind}: a new definition answered {took:.2f} s after it was saved")

        # Stopped again: 503 at once, although the socket still answers.
        app.state = STOPPED
        app.save()
        wait_for(lambda: state_of(front, "/flask/hello")[0] == 503, timeout=5, what="503 after the stop")


# With the process layer: a real worker, real keepers, real engines ---------------------------------


@pytest.fixture(params=FRONTS)
def shared_front(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A front following the routes file the worker writes too (the suite's var/front/routes.json)."""
    running = RunningFront(request.param, tmp_path)
    running.routes_file = Path(settings.WEBAPPS_ROUTES_FILE)
    running.routes_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        running.start([])
        yield running
    finally:
        running.stop()


@pytest.mark.worker
@pytest.mark.usefixtures("webapp_processes")
def test_a_stopped_app_answers_503_and_a_killed_one_waits_or_503_until_its_restart(
    shared_front: RunningFront, tmp_path: Path, operator: Any
) -> None:
    import sys

    import psutil

    from processes import control

    front = shared_front
    app = make_webapp(app_dir(tmp_path), restart_policy="always", python_executable=sys.executable)
    steady(front, "/hello/", 503)
    assert state_of(front, "/hello/")[1]["state"] == STOPPED

    control.request(app, "start", operator)
    wait_for(lambda: front.get("/hello/")[2] == "hello from /hello", timeout=40, what="the app through the front")
    app.refresh_from_db()
    old_pid = app.pid

    # kill -9: in between, the front answers 503 (backoff, starting) where the routes say so, or
    # the request waits in the backlog of the socket the keeper holds and the restarted app
    # answers it; then the app answers again.
    psutil.Process(old_pid).kill()
    seen: list[int] = []

    def back() -> bool:
        status = front.get("/hello/")[0]
        if not seen or seen[-1] != status:
            seen.append(status)
        app.refresh_from_db()
        return status == 200 and app.pid not in (None, old_pid)

    wait_for(back, timeout=60, what="the restarted app through the front")
    print(f"{front.kind}: statuses after kill -9: {seen}")
    # Never a 502: before the keeper has seen the exit the app is still "running" but its socket
    # refuses, which the front answers 503 (Retry-After: 1) as it does a restart in progress.
    assert set(seen) <= {200, 503}, seen

    # Stop: 503 saying stopped, in JSON for an API client.
    control.request(app, "stop", operator)
    wait_for(lambda: state_of(front, "/hello/x")[1].get("state") == STOPPED, timeout=30, what="503 stopped")
    status, body = state_of(front, "/hello/x")
    assert status == 503 and body["application"] == "/hello"
