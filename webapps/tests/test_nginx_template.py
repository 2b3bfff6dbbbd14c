"""nginx's config, rendered from webapps/front/nginx.conf.j2, for representative routes.

Each case's rendering is compared with the config kept beside this file (nginx_configs/NAME.conf),
so that any change to what nginx is told shows up as a change to those files, reviewed like code;
and each passes ``nginx -t`` where nginx is installed. After a deliberate change to the template,
``python -m webapps.tests.test_nginx_template`` writes the files anew: read their diff before
committing it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from webapps.front.forwarding import parse_trusted
from webapps.front.nginx import render_nginx_config
from webapps.front.routes import Route, Routes, RoutesError, Static

HERE = Path(__file__).parent / "nginx_configs"
STRIP = ("portal_sessionid", "portal_csrftoken")
# Stands for the folder a case's files are in, which differs from one run to the next.
DIR = "/srv/webapps-front"
NO_MIME_TYPES = "/nonexistent/mime.types"  # the fallback "types { }" line


def _several_apps(d: str) -> str:
    routes = Routes(
        apps=(
            Route("/flask", "/run/webapps/flask.sock", protocol="wsgi",
                  static=(Static("/flask/static", "/srv/flask/static/"), Static("/flask/media", "/srv/flask/media"))),
            Route("/fastapi", "/run/webapps/fastapi.sock", protocol="asgi"),
            Route("/fastapi/v2", "/run/webapps/v2.sock", protocol="asgi", state="starting"),
            Route("/stopped", "/run/webapps/s.sock", state="stopped"),
            Route("/broken", "/run/webapps/b.sock", state="fatal", reason='ImportError: "$HOME" {x}; #1 \\ \'q\''),
        ),
        strip_cookies=STRIP,
        portal_port=8000,
        portal_hosts=("localhost", "portal.example.org", "127.0.0.1"),
    )
    return render_nginx_config(routes, "127.0.0.1:8001", include=True)


def _root_app_alone(d: str) -> str:
    routes = Routes(apps=(Route("/", "/run/webapps/root.sock", static=(Static("/static", "/srv/root/static"),)),))
    return render_nginx_config(routes, "0.0.0.0:80", include=True, server_name="apps.example.org", keepalive=4,
                               head_timeout=5, idle_timeout=30)


def _no_apps(d: str) -> str:
    return render_nginx_config(Routes(strip_cookies=STRIP), "[::1]:8001", include=True)


def _complete_on_a_unix_socket(d: str) -> str:
    """The runner's own config: a complete one, listening on a unix socket, with the figures log,
    trusted proxies, a user for the workers, and an app whose folder nginx cannot name (lenient)."""
    routes = Routes(
        apps=(
            Route("/ok", "/run/webapps/ok.sock", protocol="asgi", static=(Static("/ok/s", "/srv/ok/s"),)),
            Route("/bad", "/run/web apps/bad.sock"),
            Route("/badstatic", "/run/webapps/bs.sock", static=(Static("/badstatic/s", "/srv/a;b"),)),
            Route("/down", "/run/webapps/down.sock", state="stopped"),
        ),
        strip_cookies=("sessionid",),
        portal_port=8443,
        portal_hosts=("portal.example.org",),
    )
    return render_nginx_config(
        routes, f"unix:{d}/front.sock", prefix=d, user="www-data", worker_processes="auto",
        mime_types=NO_MIME_TYPES, figures_log=f"{d}/figures.log", lenient=True,
        trusted_proxies=parse_trusted(["10.0.0.0/8", "::1"]),
    )


def _complete_with_mime_types(d: str) -> str:
    mime = Path(d) / "mime.types"
    mime.write_text("types { text/html html; }\n")
    routes = Routes(apps=(Route("/app", "/run/webapps/app.sock"),))
    return render_nginx_config(routes, "127.0.0.1:8002", prefix=d, worker_processes=2, mime_types=str(mime))


CASES: dict[str, Callable[[str], str]] = {
    "several_apps": _several_apps,
    "root_app_alone": _root_app_alone,
    "no_apps": _no_apps,
    "complete_on_a_unix_socket": _complete_on_a_unix_socket,
    "complete_with_mime_types": _complete_with_mime_types,
}


def rendered(name: str, folder: Path) -> str:
    """The case's config, with the run's folder written as DIR."""
    return CASES[name](str(folder)).replace(str(folder), DIR)


@pytest.mark.parametrize("name", CASES)
def test_the_config_is_the_one_kept_for_review(name: str, tmp_path: Path) -> None:
    expected = (HERE / f"{name}.conf").read_text(encoding="utf-8")
    assert rendered(name, tmp_path.resolve()) == expected


@pytest.mark.parametrize("name", CASES)
def test_each_config_passes_nginx_t(name: str, tmp_path: Path, nginx: str) -> None:
    d = tmp_path.resolve()
    config = CASES[name](str(d))
    if "events {" not in config:  # an include, as an operator puts it in the http block of their own
        (d / "webapps.conf").write_text(config)
        config = f"pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n    include {d}/webapps.conf;\n}}\n"
    # nginx -t as root switches to the workers' user; one that may not exist here is left out.
    config = config.replace("user www-data;\n", "")
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "nginx.conf").write_text(config)
    done = subprocess.run([nginx, "-t", "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("route", "what"),
    [
        (Route("/a", '/run/my"app.sock'), "socket of /a"),
        (Route("/a", "/run/app.sock", static=(Static("/a/s", "/srv/x{y}"),)), "static dir of /a"),
        (Route("/a", "/run/$app.sock"), "socket of /a"),
        (Route("/a", "/run/app#1.sock"), "socket of /a"),
    ],
)
def test_a_path_nginx_cannot_name_is_refused_not_written(route: Route, what: str) -> None:
    with pytest.raises(RoutesError, match=f"{what} .* nginx cannot use it; rename it"):
        render_nginx_config(Routes(apps=(route,)), include=True)


def test_a_figures_log_or_folder_nginx_cannot_name_is_refused(tmp_path: Path) -> None:
    routes = Routes(apps=(Route("/a", "/run/a.sock"),))
    with pytest.raises(RoutesError, match="figures log"):
        render_nginx_config(routes, include=True, figures_log="/var/log/my log")
    with pytest.raises(RoutesError, match="nginx directory"):
        render_nginx_config(routes, prefix=tmp_path / "a;b")


@pytest.mark.parametrize("name", ["it's", "a b", "a;b", "a=b", ""])
def test_a_cookie_name_nginx_cannot_match_is_refused(name: str) -> None:
    routes = Routes(apps=(Route("/a", "/run/a.sock"),), strip_cookies=("portal_sessionid", name))
    with pytest.raises(RoutesError, match="cannot be stripped by nginx: use letters, digits, - and _"):
        render_nginx_config(routes, include=True)


def test_a_mime_types_file_nginx_cannot_name_is_refused(tmp_path: Path) -> None:
    mime = tmp_path / "mime;types"
    mime.write_text("types { }\n")
    with pytest.raises(RoutesError, match="mime types file"):
        render_nginx_config(Routes(), prefix=tmp_path, mime_types=str(mime))


def write_all() -> None:
    import tempfile

    HERE.mkdir(exist_ok=True)
    for name in CASES:
        with tempfile.TemporaryDirectory() as folder:
            (HERE / f"{name}.conf").write_text(rendered(name, Path(folder).resolve()), encoding="utf-8")
            print(f"wrote {HERE / name}.conf", file=sys.stderr)


if __name__ == "__main__":
    write_all()
