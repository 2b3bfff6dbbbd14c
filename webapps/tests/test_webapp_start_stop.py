"""Start, stop and status of web applications with a real worker, real keepers and real engines,
from the CLI, the API and the pages, as for gateways."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import psutil
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from conftest import wait_until
from portal import paths, tokens
from portal.process import keeper
from processes import control
from processes.models import Activity, Run
from webapps import adapter
from webapps.models import WebApp
from webapps.tests.webapp_factories import ASGI_APP, app_dir, flask_example, make_webapp, portal_python_lacks

pytestmark = [pytest.mark.worker]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.socket_path)


def get_over_socket(webapp: WebApp, path: str) -> tuple[int, bytes]:
    conn = UnixHTTPConnection(str(adapter.socket_path(webapp)))
    try:
        conn.request("GET", path, headers={"Host": "localhost"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def webapp_processes(celery_worker, transactional_db):  # type: ignore[no-untyped-def]
    """A real worker, and every web application a test starts stopped at its end."""
    yield celery_worker
    root = paths.RUN_DIR / "webapps"
    for run_dir in root.iterdir() if root.exists() else []:
        if keeper.keeper_alive(run_dir):
            keeper.request_stop(run_dir, timeout=15, trigger="test")


@pytest.fixture
def slow_index() -> Iterator[tuple[str, threading.Event]]:
    """A package index that answers nothing until the event is set (then 404 to all)."""
    release = threading.Event()

    class SlowIndex(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(120)
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    index = ThreadingHTTPServer(("127.0.0.1", 0), SlowIndex)
    threading.Thread(target=index.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{index.server_address[1]}/simple/", release
    finally:
        release.set()
        index.shutdown()


def run(*args: str) -> str:
    out = StringIO()
    call_command("webapp", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_cli_starts_a_wsgi_app_under_gunicorn_that_answers_at_its_mount_then_stops_it(webapp_processes,
                                                                                          tmp_path):
    folder = app_dir(tmp_path)
    run("create", "/hello", "--directory", str(folder), "--module", "hello", "--env", "GREETING=hi")
    out = run("start", "/hello", "--wait", "--timeout", "40")
    assert "/hello is running (pid" in out
    webapp = WebApp.objects.get()
    status, body = get_over_socket(webapp, "/hello/")
    assert (status, body) == (200, b"hello from /hello")
    assert oct(adapter.socket_path(webapp).stat().st_mode & 0o777) == "0o600"  # the keeper's, for the fronts alone
    data = json.loads(run("status", "/hello", "--json"))
    assert data["state"] == "running" and data["engine"] == "gunicorn" and data["path"] == "/hello"
    assert "gunicorn" in webapp.startup["command"]
    tree = [psutil.Process(webapp.pid), *psutil.Process(webapp.pid).children(recursive=True)]

    assert "/hello is stopped." in run("stop", "/hello", "--wait")
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    run_row = Run.objects.of(webapp).get()
    assert run_row.outcome == "stopped" and run_row.ready_at
    trail = [s for s in Activity.objects.of(webapp).order_by("id").values_list("to_state", flat=True) if s]
    assert trail == ["starting", "running", "stopping", "stopped"]


def test_the_api_starts_an_asgi_app_under_uvicorn_and_keeps_secrets_out_of_sight(webapp_processes, tmp_path,
                                                                                  make_user):
    folder = app_dir(tmp_path, ASGI_APP)
    webapp = make_webapp(folder, protocol="asgi", secret_environment={"API_TOKEN": "t0p-s3cret-value"},
                         python_executable=__import__("sys").executable)
    _row, token = tokens.create(make_user("otto", "Operator"), "tests")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    response = client.post("/api/webapps/hello/start?wait=1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "running" and body["engine"] == "uvicorn"
    assert body["secret_environment"] == ["API_TOKEN"]
    webapp.refresh_from_db()
    assert get_over_socket(webapp, "/hello/")[0] == 200
    # The secret is in the application's environment, and nowhere a person can read it.
    assert "t0p-s3cret-value" not in json.dumps(webapp.startup)
    assert "t0p-s3cret-value" not in json.dumps(list(Activity.objects.of(webapp).values_list("message", flat=True)))
    assert "t0p-s3cret-value" not in client.get("/api/webapps/hello/").content.decode()
    assert "t0p-s3cret-value" not in adapter.log_path(webapp).read_text()
    environ = psutil.Process(webapp.pid).environ()
    assert environ["API_TOKEN"] == "t0p-s3cret-value" and environ["SCRIPT_NAME"] == "/hello"
    assert "PORTAL_SECRET_KEY" not in environ
    # Nor the embedded Redis's password (the settings read it from var/, no variable holds it).
    assert paths.redis_password() not in "\0".join(environ.values())

    response = client.post("/api/webapps/hello/stop?wait=1")
    assert response.status_code == 200 and response.json()["state"] == "stopped"


def test_a_missing_engine_refuses_the_start_with_the_pip_command(webapp_processes, tmp_path, operator):
    pytest.importorskip("gunicorn")
    folder = app_dir(tmp_path)
    webapp = make_webapp(folder, engine="granian", python_executable=__import__("sys").executable)
    try:
        import granian  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("granian is installed here: the refusal needs an interpreter without it")
    control.request(webapp, "start", operator)
    wait_until(lambda: (webapp.refresh_from_db(), bool(webapp.last_error) and not webapp.intent)[1], timeout=20,
               message="the start was not refused")
    assert "cannot run granian" in webapp.last_error
    assert webapp.startup["fix"].endswith("-m pip install granian==2.8.7")
    assert webapp.state == "stopped"


def test_a_start_in_an_interpreter_without_the_apps_package_says_which_and_how_to_give_it(
        webapp_processes, tmp_path, make_user):
    # Saved before its interpreter lost Flask (or by a merge of an older portal): the start's check says it.
    python = portal_python_lacks("flask")
    folder = flask_example(tmp_path)
    webapp = make_webapp(folder, name="/flask", module="app", python_executable=python)
    _row, token = tokens.create(make_user("otto", "Operator"), "tests")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    body = client.post("/api/webapps/flask/start?wait=1").json()
    webapp.refresh_from_db()
    assert webapp.state == "stopped" and body["state"] == "stopped", body
    assert webapp.last_error == (
        f"Start refused: {python} lacks the package 'flask' that app.py imports: give a requirements file (this "
        f"directory has requirements.txt: {folder}/requirements.txt; with no Python executable it is used) or a "
        "Python executable that has flask")
    assert "check_app.py" not in json.dumps(body)


def test_a_viewer_cannot_start_and_the_cli_says_so(webapp_processes, tmp_path, make_user):
    make_webapp(app_dir(tmp_path))
    make_user("vera", "Viewer")
    with pytest.raises(CommandError, match="Only an Operator or an Administrator may start and stop web applications"):
        run("--user", "vera", "start", "/hello")


def test_the_pages_start_and_stop_with_the_buttons(webapp_processes, tmp_path, operator):
    webapp = make_webapp(app_dir(tmp_path), python_executable=__import__("sys").executable)
    client = Client()
    client.force_login(operator)
    response = client.post("/webapps/hello/-/start/", {"from": "list"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and b"hx-get" in response.content
    wait_until(lambda: (webapp.refresh_from_db(), webapp.state == "running" and not webapp.intent)[1], timeout=40,
               message="the application did not start")
    row = client.get("/webapps/hello/-/row/?announce=1", headers={"HX-Request": "true"})
    assert row.status_code == 286 and b"is running" in row.content
    detail = client.get("/webapps/hello/").content.decode()
    assert "Ready in" in detail and "gunicorn" in detail
    activity = client.get("/webapps/hello/-/activity/")
    assert activity.status_code == 200 and b"Start requested" in activity.content
    response = client.post("/webapps/hello/-/stop/")
    assert response.status_code == 302
    wait_until(lambda: (webapp.refresh_from_db(), webapp.state == "stopped" and not webapp.intent)[1], timeout=20,
               message="the application did not stop")


def test_the_install_button_runs_the_engines_pip_command_on_the_host_and_records_the_outcome(
        webapp_processes, tmp_path, make_user):
    """An interpreter without the engine (a virtualenv without pip, so nothing is downloaded here):
    the start is refused naming the command, the button runs that command in a task, and its
    failure (pip missing) is on the page and in the Activity."""
    import subprocess
    import sys

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    webapp = make_webapp(app_dir(tmp_path), python_executable=python)
    client = Client()
    client.force_login(make_user("ada", "Administrator"))
    client.post("/webapps/hello/-/start/")
    wait_until(lambda: (webapp.refresh_from_db(), bool(webapp.last_error) and not webapp.intent)[1], timeout=20,
               message="the start was not refused")
    assert f"{python} cannot run gunicorn" in webapp.last_error
    html = client.get("/webapps/hello/").content.decode()
    assert f"Run: {python} -m pip install gunicorn==27.0.1" in html

    assert client.post("/webapps/hello/-/install/").status_code == 302
    wait_until(lambda: (webapp.refresh_from_db(), webapp.startup.get("install", {}).get("state") == "failed")[1],
               timeout=60, message="the install did not finish")
    assert "No module named pip" in webapp.startup["install"]["message"]
    assert client.get("/webapps/hello/-/install/").status_code == 286
    messages = list(Activity.objects.of(webapp).values_list("message", flat=True))
    assert any(m.startswith("Install of gunicorn requested") for m in messages)
    assert any("-m pip install gunicorn==27.0.1 failed (exit 1)" in m for m in messages)


def test_only_an_administrator_presses_the_install_button(tmp_path, role_client, transactional_db):
    make_webapp(app_dir(tmp_path))
    for role in ("viewer", "operator"):
        assert role_client(role).post("/webapps/hello/-/install/").status_code == 403


def test_the_flask_example_is_started_from_its_requirements_file_in_its_own_virtualenv(webapp_processes, tmp_path):
    """The README's way: a requirements file instead of an interpreter. The start builds the
    virtualenv (with gunicorn added), says so in the Activity, and the app answers at its mount."""
    from webapps.tests.example_servers import EXAMPLES

    folder = EXAMPLES / "flaskapp"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text((folder / "requirements.txt").read_text())
    # Its database beside the test, not in var/: var/ is the portal's, hidden from the application;
    # in a folder its own user may write (when the portal runs as root, the app is not root).
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    run("create", "/flask", "--directory", str(folder), "--module", "app",
        "--requirements", str(requirements), "--env", "APP_DB_PATH=" + str(data / "f.db"))
    out = run("start", "/flask", "--wait", "--timeout", "300")
    assert "/flask is running" in out
    webapp = WebApp.objects.get()
    status, body = get_over_socket(webapp, "/flask/posts")
    assert (status, body.strip()) == (200, b"[]")
    assert str(adapter.venv_root(webapp)) in webapp.startup["command"]
    messages = list(Activity.objects.of(webapp).order_by("id").values_list("message", flat=True))
    assert any(m.startswith("Building the virtualenv from") for m in messages)
    assert any(m.startswith("Virtualenv ") and " ready in " in m for m in messages)
    run("stop", "/flask", "--wait")

    # A changed requirements file: the next start rebuilds the virtualenv beside the old one.
    requirements.write_text(requirements.read_text() + "# pinned again\n")
    assert "/flask is running" in run("start", "/flask", "--wait", "--timeout", "300")
    assert Activity.objects.of(webapp).filter(message__startswith="Rebuilding the virtualenv from").exists()
    run("stop", "/flask", "--wait")
    root = adapter.venv_root(webapp)
    assert root.exists()
    run("delete", "/flask")
    wait_until(lambda: not root.exists(), timeout=5, message="the virtualenv outlived its definition")


def test_debug_reloads_on_a_saved_file_and_says_which_in_the_activity(webapp_processes, tmp_path):
    import os
    import time

    folder = app_dir(tmp_path)
    run("create", "/hello", "--directory", str(folder), "--module", "hello", "--debug")
    run("start", "/hello", "--wait", "--timeout", "40")
    webapp = WebApp.objects.get()
    assert get_over_socket(webapp, "/hello/")[1] == b"hello from /hello"
    source = folder / "hello.py"
    first = source.stat().st_mtime_ns
    source.write_text(source.read_text().replace("hello from", "changed at"))  # the same size
    # Dated two seconds after the first version, as a save made later is (no wait for the clock):
    # Python trusts a .pyc whose source has the same size and mtime in whole seconds.
    os.utime(source, ns=(first + 2_000_000_000, first + 2_000_000_000))
    saved = time.monotonic()
    wait_until(lambda: get_over_socket(webapp, "/hello/")[1] == b"changed at /hello", timeout=10, interval=0.05,
               message="the new code did not answer")
    took = time.monotonic() - saved
    print(f"debug reload: the new code answered {took:.2f} s after the save")
    assert took < 5
    wait_until(lambda: Activity.objects.of(webapp).filter(trigger="reload").exists(), timeout=10,
               message="no reload in the Activity")
    assert "hello.py changed" in Activity.objects.of(webapp).filter(trigger="reload").first().message
    run("stop", "/hello", "--wait")


def test_kill_9_of_an_application_is_restarted_by_its_policy(webapp_processes, tmp_path):
    import os
    import signal

    folder = app_dir(tmp_path)
    run("create", "/hello", "--directory", str(folder), "--module", "hello", "--restart-policy", "always")
    run("start", "/hello", "--wait", "--timeout", "40")
    webapp = WebApp.objects.get()
    first = webapp.pid
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: (webapp.refresh_from_db(), webapp.state == "running" and webapp.pid not in (None, first))[1],
               timeout=30, message="the application was not restarted")
    assert get_over_socket(webapp, "/hello/")[0] == 200
    run("stop", "/hello", "--wait")


def test_a_virtualenv_build_does_not_delay_the_start_of_another_application(webapp_processes, tmp_path, slow_index):
    """Two applications whose virtualenvs take long to build (their package index holds every
    request until the test lets it go) are started, then a plain one: the plain one runs at once, its
    start is not queued behind the builds, and the rows say the others are building."""
    url, release = slow_index
    try:
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"--index-url {url}\nslowpkg\n")
        plain = app_dir(tmp_path)
        for name in ("/slow1", "/slow2"):
            run("create", name, "--directory", str(plain), "--module", "hello", "--requirements", str(requirements))
        run("create", "/plain", "--directory", str(plain), "--module", "hello")
        run("start", "/slow1")
        run("start", "/slow2")
        wait_until(lambda: all(w.startup.get("venv", {}).get("state") == "building"
                               for w in WebApp.objects.filter(name__startswith="/slow")),
                   timeout=20, message="the builds did not begin")
        out = run("start", "/plain", "--wait", "--timeout", "15")
        assert "/plain is running" in out
        client = Client()
        from django.contrib.auth import get_user_model

        client.force_login(get_user_model().objects.create_superuser("root", password="x"))
        html = client.get("/webapps/").content.decode()
        assert html.count("building its virtualenv") == 2
        assert "building its virtualenv" in client.get("/webapps/slow1/").content.decode()
        assert all(w.shown_state == "starting" for w in WebApp.objects.filter(name__startswith="/slow"))
        # The index answers 404: the builds fail and each start is refused with pip's reason.
        release.set()
        slow = WebApp.objects.filter(name__startswith="/slow")
        refused = lambda: all(w.last_error.startswith("Start refused: the virtualenv") for w in slow.all())  # noqa: E731
        wait_until(lambda: refused() or slow.filter(state="running").exists(), timeout=90)
        assert refused(), list(slow.values_list("name", "state", "last_error", "intent"))
        assert not WebApp.objects.filter(name__startswith="/slow").exclude(intent="").exists()
    finally:
        release.set()


# An application that keeps a file in its HOME from its import on, as the examples keep their
# database there when their folder is not theirs to write (it is root's here).
HOME_WRITER = '''
import os

# Each worker imports it: written whole and then renamed, so that one worker's import never shows
# another's request an empty file.
with open(os.path.join(os.environ["HOME"], f"made-at-import.{os.getpid()}"), "w") as f:
    f.write("x")
os.replace(f.name, os.path.join(os.environ["HOME"], "made-at-import"))


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [open(os.path.join(os.environ["HOME"], "made-at-import")).read().encode()]
'''


def test_an_application_writing_its_home_at_import_passes_the_start_s_check_as_its_own_user(webapp_processes,
                                                                                             tmp_path):
    from processes.accounts import cannot_switch

    if reason := cannot_switch():
        pytest.skip(f"hosted users are not switched here: {reason}")
    folder = app_dir(tmp_path, HOME_WRITER)
    run("create", "/homely", "--directory", str(folder), "--module", "hello")
    out = run("start", "/homely", "--wait", "--timeout", "40")
    assert "/homely is running (pid" in out, out
    webapp = WebApp.objects.get()
    assert get_over_socket(webapp, "/homely/") == (200, b"x")
    # Written by its own user, in its own home, at the check and again by the engine.
    home = adapter.home(webapp)
    assert (home / "made-at-import").stat().st_uid == home.stat().st_uid != 0
