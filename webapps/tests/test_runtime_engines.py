"""The engine's command line, environment and keeper Spec for a web application (no process started here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from portal.process.listener import LISTEN_FD
from portal.process.spec import Spec
from webapps.runtime.engines import (
    GRANIAN_LAUNCHER,
    GUNICORN_LAUNCHER,
    UVICORN_LAUNCHER,
    AppRun,
    build_spec,
    check_engine,
    engine_argv,
    engine_env,
    engine_module,
    install_command,
    normalise_mount,
)


def app_run(**fields) -> AppRun:  # type: ignore[no-untyped-def]
    values = {"mount": "/flask", "directory": "/srv/flask", "module": "app", "socket": "/run/w/app.sock",
              "python": "/opt/py/bin/python"}
    return AppRun(**{**values, **fields})


def test_gunicorn_serves_wsgi_with_gthread_on_the_keeper_s_socket() -> None:
    argv = engine_argv(app_run(workers=2, threads=8))
    assert argv[:5] == ["/opt/py/bin/python", str(GUNICORN_LAUNCHER), "--fd", LISTEN_FD, "--"]
    assert "--bind" not in argv and "/run/w/app.sock" not in argv  # never a path it would bind itself
    assert [p.name for p in GUNICORN_LAUNCHER.parent.glob("*.py")] == ["portal_gunicorn_launch.py"]
    assert argv[argv.index("--worker-class") + 1] == "gthread"
    assert argv[argv.index("--workers") + 1] == "2" and argv[argv.index("--threads") + 1] == "8"
    assert argv[argv.index("--chdir") + 1] == "/srv/flask"
    assert "--forwarder-headers=" in argv, "no SCRIPT_NAME or PATH_INFO from request headers"
    assert argv[-1] == "app:app"


def test_uvicorn_runs_through_the_launcher_without_root_path() -> None:
    app = app_run(mount="/fastapi/", protocol="asgi", module="main", callable="api")
    argv = engine_argv(app)
    assert argv[:2] == ["/opt/py/bin/python", str(UVICORN_LAUNCHER)]
    assert argv[argv.index("--fd") + 1] == LISTEN_FD and "--uds" not in argv
    assert "--root-path" not in argv, "uvicorn's --root-path doubles the prefix behind a front passing the full path"
    env = engine_env(app)
    assert env["SCRIPT_NAME"] == "/fastapi" and env["WEBAPP_TARGET"] == "main:api"
    assert UVICORN_LAUNCHER.parent.name == "serve" and [p.name for p in UVICORN_LAUNCHER.parent.glob("*.py")] == [
        "portal_uvicorn.py"], "the launcher's folder becomes sys.path[0]: it must hold nothing else"


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_granian_serves_both_with_its_prefix_on_the_keeper_s_socket(protocol: str) -> None:
    argv = engine_argv(app_run(engine="granian", protocol=protocol))
    assert argv[:5] == ["/opt/py/bin/python", str(GRANIAN_LAUNCHER), "--fd", LISTEN_FD, "--"]
    assert argv[argv.index("--interface") + 1] == protocol
    assert argv[argv.index("--uds") + 1] == "/run/w/app.sock"  # granian's messages name it; the launcher serves the fd
    assert "--uds-permissions" not in argv
    assert [p.name for p in GRANIAN_LAUNCHER.parent.glob("*.py")] == ["portal_granian_launch.py"], \
        "the launcher's folder becomes sys.path[0]: it must hold nothing else"
    assert argv[argv.index("--url-path-prefix") + 1] == "/flask"
    assert ("--blocking-threads" in argv) == (protocol == "wsgi")


def test_the_mount_comes_from_the_environment_and_wins_over_the_definitions() -> None:
    env = engine_env(app_run(env={"APP_DB_PATH": "/data/db", "PYTHONUNBUFFERED": "0"}))
    assert env == {"APP_DB_PATH": "/data/db", "PYTHONUNBUFFERED": "0", "SCRIPT_NAME": "/flask"}
    assert "SCRIPT_NAME is set by the portal" in app_run(env={"SCRIPT_NAME": "/x"}).problems()[0]


@pytest.mark.parametrize(("mount", "normal"), [("/flask/", "/flask"), ("flask", "/flask"), ("/", ""), ("", ""),
                                              ("/a/b/", "/a/b")])
def test_mounts_are_normalised(mount: str, normal: str) -> None:
    assert normalise_mount(mount) == normal


@pytest.mark.parametrize(("fields", "words"), [
    ({"engine": "gunicorn", "protocol": "asgi"}, "gunicorn does not serve ASGI applications; choose uvicorn or granian"),
    ({"engine": "uvicorn", "protocol": "wsgi"}, "uvicorn does not serve WSGI applications; choose gunicorn or granian"),
    ({"engine": "waitress"}, "engine 'waitress' is not one of gunicorn, uvicorn, granian"),
    ({"protocol": "cgi"}, "protocol 'cgi' is not one of wsgi, asgi"),
    ({"module": "app.py"}, "give it without .py"),
    ({"callable": "app()"}, "is not a Python name"),
    ({"callable": "Holder.app"}, "is not a Python name"),
    ({"workers": 0}, "workers must be between 1 and 64"),
    ({"socket": "/tmp/" + "x" * 120}, "longer than the 107 bytes"),
])
def test_impossible_runs_are_refused_saying_how_to_fix_them(fields: dict, words: str) -> None:
    app = app_run(**fields)
    assert any(words in problem for problem in app.problems()), app.problems()
    with pytest.raises(ValueError, match=words.split(";")[0].replace("(", r"\(")):
        engine_argv(app)


def test_the_default_engine_follows_the_protocol() -> None:
    assert app_run(protocol="wsgi").engine == "gunicorn"
    assert app_run(protocol="asgi").engine == "uvicorn"


def test_the_spec_probes_the_mount_over_the_socket_and_hides_secrets(tmp_path: Path) -> None:
    app = app_run(directory=str(tmp_path), env={"API_TOKEN": "tok-123456", "MODE": "x"}, secret_env=["API_TOKEN"],
                  log_file=str(tmp_path / "logs" / "app.log"))
    spec = build_spec(app, log_roots=[str(tmp_path)])
    assert spec.cwd == str(tmp_path) and spec.log_file == str(tmp_path / "logs" / "app.log")
    assert spec.probe == {"kind": "unix-http", "socket": "/run/w/app.sock", "path": "/flask/", "timeout": 2.0}
    assert spec.listen == {"path": "/run/w/app.sock", "mode": 0o600}  # the keeper binds it, the probe and fronts use it
    assert spec.secret_env == ["API_TOKEN"] and spec.reload is None
    assert "tok-123456" not in spec.display_command() and "tok-123456" not in str(spec.redacted_dict())
    assert Spec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(("engine", "protocol", "workers", "how"), [
    ("gunicorn", "wsgi", 1, "SIGHUP"), ("granian", "asgi", 1, "SIGHUP"),
    ("uvicorn", "asgi", 2, "SIGHUP"), ("uvicorn", "asgi", 1, None),
])
def test_debug_reload_is_graceful_where_the_engine_can(engine: str, protocol: str, workers: int, how: str | None,
                                                       tmp_path: Path) -> None:
    app = app_run(engine=engine, protocol=protocol, workers=workers, debug=True, directory=str(tmp_path),
                  log_file=str(tmp_path / "logs" / "app.log"))
    reload = build_spec(app).reload
    assert reload is not None and reload["signal"] == how
    assert reload["paths"] == [str(tmp_path)] and "*.py" in reload["patterns"] and "*.html" in reload["patterns"]
    assert reload["ignore"] == [str(tmp_path / "logs")]


def test_a_missing_engine_is_refused_with_the_exact_pip_command() -> None:
    # granian is not in the portal's own virtualenv; gunicorn and uvicorn (with websockets) are.
    failure = check_engine(sys.executable, "granian")
    assert failure is not None and failure.code == "engine-missing"
    assert failure.fix == f"{sys.executable} -m pip install granian==2.8.7" == install_command(sys.executable, "granian")
    assert failure.fix_argv == [sys.executable, "-m", "pip", "install", "granian==2.8.7"]
    assert "install it with: " + failure.fix in failure.message and "granian missing" in failure.message
    assert check_engine(sys.executable, "gunicorn") is None
    assert engine_module("uvicorn") == ["uvicorn"]  # websockets: a warning (engine_warnings), not a refusal
    with pytest.raises(ValueError, match="unknown engine"):
        install_command(sys.executable, "waitress")
