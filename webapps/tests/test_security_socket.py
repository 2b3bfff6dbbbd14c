"""A hosted application cannot move the socket the fronts connect to.

The fronts (nginx, whose workers are the portal's user, root where users are switched, and the
asyncio front) connect to an application's socket by its path. That path is the keeper's: bound
by the keeper in its run directory, in var/ (the portal's, 0700), and handed to the engine as a
descriptor (portal/process/listener.py). A hostile application that, once running, tries to put
a link to another application's socket in its place - the path its own listening socket says it
is bound at, as an engine that binds its socket itself would have it in the home it owns - is
refused, and the fronts still carry its visitors to it alone. Real definitions started by the
real worker and keepers, as their own users where the portal runs as root, on both fronts.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from conftest import require_nginx
from webapps import adapter, routing
from webapps.models import WebApp
from webapps.tests.front_helpers import RunningFront
from webapps.tests.test_webapp_start_stop import webapp_processes  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.worker]

BURST = 16  # requests side by side: more than the connections a front keeps open to one engine
BURSTS_FOR = 3.0  # seconds: longer than an engine keeps an idle connection (gunicorn: 2 s)

VICTIM_APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"victim"]
'''

# What a hostile application does: find the path its listening socket is bound at (and the one
# its operator's page shows, given here in targets.json) and put a link to the victim's socket
# there, as a rename over it (atomic) and as an unlink then a link; each attempt's errno is told.
HOSTILE_APP = '''
import errno, json, os, socket, stat

HERE = os.path.dirname(os.path.abspath(__file__))


def bound_paths():
    paths = set()
    for fd in range(1024):  # not /proc/self/fd: a process that changed users may not list it
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if sock.family == socket.AF_UNIX and isinstance(sock.getsockname(), str) and sock.getsockname():
                paths.add(sock.getsockname())
        finally:
            sock.close()
    return sorted(paths)


def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))


def swap(path, victim):
    spare = path + ".swap"
    return {
        "rename a link over it": attempt(lambda: (os.symlink(victim, spare), os.rename(spare, path))),
        "unlink it": attempt(lambda: os.unlink(path)),
        "link in its place": attempt(lambda: os.symlink(victim, path)),
    }


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json" if environ["PATH_INFO"] == "/swap" else "text/plain")])
    if environ["PATH_INFO"] != "/swap":
        return [b"hostile"]
    with open(os.path.join(HERE, "targets.json")) as f:
        targets = json.load(f)
    paths = sorted(set(bound_paths()) | {targets["front"]})
    return [json.dumps({"bound": bound_paths(), "attempts": {p: swap(p, targets["victim"]) for p in paths}}).encode()]
'''


def run(*args: str) -> str:
    out = StringIO()
    call_command("webapp", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def start(name: str, folder: Path, source: str) -> WebApp:
    folder.mkdir()
    (folder / "app.py").write_text(source)
    run("create", name, "--directory", str(folder), "--module", "app", "--python", sys.executable)
    assert f"{name} is running" in run("start", name, "--wait", "--timeout", "40")
    return WebApp.objects.get(name=name)


@pytest.mark.parametrize("kind", ["asyncio", "nginx"])
def test_an_application_cannot_swap_its_socket_for_a_link_to_another_s(webapp_processes, tmp_path, kind):  # noqa: F811
    if kind == "nginx":
        require_nginx()
    tmp_path.chmod(0o755)  # the applications' own users read their folders
    victim = start("/victim", tmp_path / "victim", VICTIM_APP)
    hostile = start("/hostile", tmp_path / "hostile", HOSTILE_APP)
    front_socket = str(adapter.socket_path(hostile))
    (tmp_path / "hostile" / "targets.json").write_text(json.dumps(
        {"front": front_socket, "victim": str(adapter.socket_path(victim))}))
    front = RunningFront(kind, tmp_path / "front")
    (tmp_path / "front").mkdir()
    try:
        front.start(routing.current_routes())
        assert front.get("/hostile/")[2] == "hostile" and front.get("/victim/")[2] == "victim"

        status, _, body = front.get("/hostile/swap")
        assert status == 200, adapter.log_path(hostile).read_text()[-3000:]
        result = json.loads(body)
        # What its visitors get: its own answers, never the victim's (nor an error).
        # Bursts of requests side by side for a few seconds: beyond the connections the front keeps
        # open to the engine (and past their idle end), each burst makes it connect anew by path.
        answers: set[tuple[int, str]] = set()
        deadline = time.monotonic() + BURSTS_FOR
        with ThreadPoolExecutor(BURST) as pool:
            while time.monotonic() < deadline:
                answers |= set(pool.map(lambda _: front.get("/hostile/")[:3:2], range(BURST)))
        assert answers == {(200, "hostile")}, (answers, result)
        assert front.get("/victim/")[2] == "victim"
        # The engine was handed the keeper's socket: the only path it is bound at is the front's,
        # in a folder it can neither write nor list; every swap was refused.
        assert result["bound"] == [front_socket], result
        assert all("ok" not in errors.values() for errors in result["attempts"].values()), result
        info = os.lstat(front_socket)  # still the keeper's socket, no link
        assert stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid()
    finally:
        front.stop()
