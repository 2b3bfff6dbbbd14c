"""The routes file, the nginx config as an operator includes it, the figures, and no Django in the front."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from webapps.front.metrics import Metrics
from webapps.front.nginx import NginxFront, render_nginx_config
from webapps.front.routes import Route, RoutesError, Static, load_routes, write_routes
from webapps.tests.front_helpers import ROOT

STRIP = ["portal_sessionid", "portal_csrftoken"]


def test_the_front_never_imports_django() -> None:
    code = (
        "import sys, webapps.front, webapps.front.server, webapps.front.nginx, webapps.front.__main__;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'django'); print(bad); sys.exit(bool(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_write_routes_writes_the_documented_shape_atomically(tmp_path: Path) -> None:
    target = tmp_path / "routes.json"
    routes = write_routes(
        target,
        [
            Route("/flask", "/run/flask.sock", protocol="wsgi"),
            {"path": "/fastapi", "socket": "/run/f.sock", "protocol": "asgi", "state": "starting"},
        ],
        STRIP,
    )
    data = json.loads(target.read_text())
    assert data["version"] == 1 and data["strip_cookies"] == STRIP
    assert data["apps"][0] == {
        "path": "/flask",
        "socket": "/run/flask.sock",
        "state": "running",
        "reason": "",
        "protocol": "wsgi",
        "static": [],
    }
    assert load_routes(target) == routes
    assert [p.name for p in tmp_path.iterdir()] == ["routes.json"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ({"path": "flask", "socket": "/s.sock"}, "must start with '/'"),
        ({"path": "/flask/", "socket": "/s.sock"}, "trailing slash"),
        ({"path": "/a/../b", "socket": "/s.sock"}, "'..'"),
        ({"path": "/fl ask", "socket": "/s.sock"}, "letters, digits and ._~-"),
        ({"path": "/flask", "socket": "s.sock"}, "absolute path to a unix socket"),
        ({"path": "/flask", "socket": "/s.sock", "state": "sleepy"}, "is not one of running"),
        ({"path": "/flask", "socket": "/s.sock", "protocol": "cgi"}, "must be wsgi or asgi"),
        ({"path": "/flask", "socket": "/s.sock", "static": [{"url": "/other/static", "dir": "/d"}]}, "sub-path"),
        ({"path": "/flask", "socket": "/s.sock", "static": [{"url": "/flask/static", "dir": "d"}]}, "absolute"),
    ],
)
def test_a_bad_route_is_refused_saying_what_to_fix(tmp_path: Path, app: dict, message: str) -> None:
    with pytest.raises(RoutesError, match=message.replace("(", r"\(").replace(".", r"\.")):
        write_routes(tmp_path / "routes.json", [app], STRIP)
    assert not (tmp_path / "routes.json").exists()


def test_two_apps_at_the_same_path_in_another_case_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RoutesError, match="listed twice"):
        write_routes(tmp_path / "r.json", [Route("/Flask", "/a.sock"), Route("/flask", "/b.sock")], STRIP)


def test_the_include_works_in_an_operators_own_nginx(tmp_path: Path, nginx: str) -> None:
    routes = write_routes(
        tmp_path / "routes.json",
        [
            Route("/flask", "/run/flask.sock"),
            Route("/fastapi", "/run/f.sock", protocol="asgi"),
            Route("/down", "/run/d.sock", state="fatal", reason='ImportError: "$HOME" {x}; #1'),
        ],
        STRIP,
    )
    include = render_nginx_config(routes, "127.0.0.1:8081", include=True)
    (tmp_path / "webapps.conf").write_text(include)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    include {tmp_path}/webapps.conf;\n}}\n"
    )
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "proxy_request_buffering off;" in include and "proxy_buffering off;" in include
    assert "proxy_buffer_size 64k;" in include, "an answer up to 64 KiB in one read and one write, as the asyncio front"
    assert "proxy_set_header Host $http_host;" in include
    assert include.count("proxy_set_header Upgrade $http_upgrade;") == 1  # the ASGI app only


def test_a_socket_path_nginx_cannot_quote_is_refused(tmp_path: Path) -> None:
    routes = write_routes(tmp_path / "r.json", [Route("/flask", "/run/my app;.sock")], STRIP)
    with pytest.raises(RoutesError, match="nginx cannot use it"):
        render_nginx_config(routes, include=True)


def test_latency_percentiles_come_from_the_histogram() -> None:
    metrics = Metrics()
    for _ in range(90):
        metrics.record("/flask", 200, 0.0015)  # 1.5 ms -> the "<= 2 ms" bucket
    for _ in range(10):
        metrics.record("/flask", 502, 0.3)  # 300 ms -> "<= 500 ms"
    figures = metrics.to_json()["apps"]["/flask"]
    assert figures["requests"] == 100 and figures["errors_5xx"] == 10
    assert figures["latency_ms"]["p50"] == 2.0
    assert figures["latency_ms"]["p90"] == 2.0
    assert figures["latency_ms"]["p99"] == 500.0


@pytest.mark.needs_nginx
def test_the_complete_config_passes_nginx_t_and_a_refused_one_is_kept_aside(tmp_path: Path) -> None:
    routes = write_routes(
        tmp_path / "routes.json",
        [
            Route("/flask", "/run/flask.sock", static=(Static("/flask/static", "/srv/flask/static"),)),
            Route("/stopped", "/run/s.sock", state="stopped"),
        ],
        STRIP,
    )
    front = NginxFront(tmp_path / "nginx", "127.0.0.1:8082")
    front.write(routes)
    ok, output = front.check(front.conf)
    assert ok, output
    front.listen = "127.0.0.1:99999"  # a port nginx refuses
    with pytest.raises(RoutesError, match="nginx -t refused"):
        front.write(routes)
    assert (tmp_path / "nginx" / "nginx.conf.rejected").exists()
    assert "listen 127.0.0.1:8082;" in front.conf.read_text()  # the good config stays in force


def test_the_history_holds_each_seconds_rates_and_percentiles() -> None:
    metrics = Metrics()
    metrics.started = 100.0
    for _ in range(20):
        metrics.record("/flask", 200, 0.0015)
    metrics.tick(102.0)
    for _ in range(5):
        metrics.record("/flask", 502, 0.3)
    metrics.tick(103.0)
    metrics.tick(104.0)
    history = metrics.to_json()["history"]["/flask"]
    assert [(h["t"], h["rps"], h["e5xx"], h["p50"], h["p99"]) for h in history] == [
        (102.0, 10.0, 0.0, 2.0, 2.0),  # 20 requests over 2 s, all within 2 ms
        (103.0, 5.0, 5.0, 500.0, 500.0),  # this second's requests only
        (104.0, 0.0, 0.0, None, None),  # a quiet second is a point too
    ]
    for _ in range(200):
        metrics.tick()
    assert len(metrics.to_json()["history"]["/flask"]) == 120  # two minutes, no more


@pytest.mark.needs_nginx
def test_the_runner_serves_the_others_when_one_apps_path_is_unusable_by_nginx(tmp_path: Path) -> None:
    routes = write_routes(
        tmp_path / "routes.json",
        [
            Route("/flask", "/run/flask.sock"),
            Route("/odd", "/run/odd.sock", static=(Static("/odd/static", '/srv/my "static" ${x};'),)),
        ],
        STRIP,
    )
    front = NginxFront(tmp_path / "nginx", "127.0.0.1:8083")
    front.write(routes)  # no RoutesError: the runner keeps following the routes
    ok, output = front.check(front.conf)
    assert ok, output
    conf = front.conf.read_text()
    assert "server unix:/run/flask.sock;" in conf and "odd.sock" not in conf
    assert "application /odd cannot be served by nginx" in conf and "rename it" in conf
