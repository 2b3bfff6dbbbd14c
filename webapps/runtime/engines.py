"""How a web application is served: the engine's command line, its environment, and the Spec its keeper runs.

Never imports Django: the portal builds a :class:`~portal.process.spec.Spec` from an
:class:`AppRun` and hands it to a keeper (``portal.process.keeper.launch``).

Every engine serves a unix socket that its keeper binds and hands down by descriptor
(``Spec.listen``, :mod:`portal.process.listener`): the socket lies in the run directory, the
portal's own folder (0700), mode 0600, so that the fronts (the portal's user) alone connect and
the application, which never learns more than the descriptor, cannot put a link in its place.
The keeper keeps it open across the engine's restarts.

* **gunicorn** (WSGI, ``gthread`` workers): under the launcher
  ``serve_gunicorn_launch/portal_gunicorn_launch.py``, which hands it the descriptor through
  systemd's socket-activation protocol (with ``--bind fd://N`` gunicorn would try to remove the
  socket's file when it stops, and fail: the folder is not the application's). The mount is
  ``SCRIPT_NAME`` from the process environment: gunicorn strips it from PATH_INFO, and since
  gunicorn 22 it ignores a ``SCRIPT_NAME`` request header.
* **uvicorn** (ASGI, natively async): under the launcher ``serve/portal_uvicorn.py``, which hands
  the descriptor to uvicorn with ``--fd``. uvicorn's ``--root-path`` doubles the prefix behind a
  front that passes the full path, so the launcher sets ``root_path`` from ``SCRIPT_NAME`` in each
  scope instead (see that file).
* **granian** (WSGI or ASGI): granian has no option for a descriptor, so it runs under the
  launcher ``serve_granian_launch/portal_granian_launch.py``, which makes granian's shared socket
  of it (see that file). ``--url-path-prefix`` gives WSGI its SCRIPT_NAME (PATH_INFO stripped) and
  ASGI its root_path (path left whole: no doubling). A WSGI application is served through
  ``serve_granian/portal_granian.py``, which returns an answer of known length up to 256 KiB in one
  piece (granian streams any other iterable: the head, then each chunk, each a write that wakes the
  front and the client again; see that file).

Reloads (debug): gunicorn replaces its workers on SIGHUP and loads the app anew (it is not
preloaded); granian respawns its workers on SIGHUP ("gracefully respawning workers"), the
old one retired ``--respawn-interval`` after the new one starts; uvicorn handles SIGHUP only
in its multi-process supervisor (``--workers`` above 1: each worker replaced once its
replacement is ready); a single uvicorn process would die of it, so the keeper restarts it.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.process.listener import LISTEN_FD
from portal.process.spec import Spec

ENGINES = ("gunicorn", "uvicorn", "granian")
PROTOCOLS = ("wsgi", "asgi")
# What each engine serves.
ENGINE_PROTOCOLS = {"gunicorn": ("wsgi",), "uvicorn": ("asgi",), "granian": ("wsgi", "asgi")}
DEFAULT_ENGINE = {"wsgi": "gunicorn", "asgi": "uvicorn"}
# The versions the portal installs into an application's virtualenv (and names in its
# "pip install" advice): the ones its tests serve the examples with. uvicorn's "standard"
# extra brings websockets (without it uvicorn answers a websocket upgrade with 404), uvloop
# and httptools.
ENGINE_REQUIREMENTS = {
    "gunicorn": "gunicorn==27.0.1",
    "uvicorn": "uvicorn[standard]==0.54.0",
    "granian": "granian==2.8.7",
}
# The modules the interpreter must import to run each engine.
ENGINE_MODULES = {"gunicorn": ["gunicorn"], "uvicorn": ["uvicorn"], "granian": ["granian"]}
# Modules an engine runs without, losing something: a start goes on, with a warning that says what.
ENGINE_EXTRAS = {
    "uvicorn": {"websockets": "uvicorn serves HTTP without it, but answers every websocket upgrade with 404"},
}
SOCKET_MODE = 0o600  # the portal's user (the fronts) alone: the engine has the descriptor
SOCKET_NAME = "app.sock"
GUNICORN_LAUNCHER = Path(__file__).resolve().parent / "serve_gunicorn_launch" / "portal_gunicorn_launch.py"
UVICORN_LAUNCHER = Path(__file__).resolve().parent / "serve" / "portal_uvicorn.py"
GRANIAN_WSGI = Path(__file__).resolve().parent / "serve_granian" / "portal_granian.py"
GRANIAN_LAUNCHER = Path(__file__).resolve().parent / "serve_granian_launch" / "portal_granian_launch.py"
TARGET_ENV = "WEBAPP_TARGET"  # read by the uvicorn launcher and granian's WSGI wrapper
# Names a definition's environment may not set: the runtime sets them for the engine.
RESERVED_ENV = frozenset({"SCRIPT_NAME", TARGET_ENV})
# A dotted module and a dotted attribute path (``mysite.wsgi``, ``application``).
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

# Readiness, reload and restart settings.
INIT_TIMEOUT = 30.0  # a Django project's first import can take seconds on a loaded machine
STOP_TIMEOUT = 10.0
# Code and templates only: data files an application writes into its own folder (a JSON cache,
# an upload, a SQLite file) must never reload it in a loop.
RELOAD_PATTERNS = ["*.py", "*.html", "*.htm", "*.jinja", "*.jinja2", "*.j2"]
RELOAD_DEBOUNCE = 0.1
RELOAD_INTERVAL = 0.2


@dataclass
class AppRun:
    """What is needed to serve one web application (a definition, resolved by the portal).

    ``mount``: the URL path (``/flask``; ``""`` or ``"/"`` for the root). ``directory``: the
    application directory (the working directory, first on sys.path). ``module`` and
    ``callable``: ``mysite.wsgi`` and ``application``. ``python``: the interpreter that runs
    the engine (the app's virtualenv or the portal's own). ``env``: the definition's variables,
    ``secret_env`` the names among them whose values are secret. ``socket``: the unix socket
    path the keeper binds and the fronts connect to, in the run directory (never the
    application's folder). ``log_file``: None for the keeper's default.
    """

    mount: str
    directory: str
    module: str
    socket: str
    callable: str = "app"
    protocol: str = "wsgi"
    engine: str | None = None  # None: gunicorn for WSGI, uvicorn for ASGI
    workers: int = 1  # not one per CPU: see WebApp.workers
    threads: int = 4
    debug: bool = False
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    secret_env: list[str] = field(default_factory=list)
    log_file: str | None = None

    def __post_init__(self) -> None:
        self.mount = normalise_mount(self.mount)
        if self.engine is None:
            self.engine = DEFAULT_ENGINE.get(self.protocol, "gunicorn")

    @property
    def target(self) -> str:
        return f"{self.module}:{self.callable}"

    def problems(self) -> list[str]:
        """What makes this run impossible, each saying how to fix it ([] when none)."""
        out = []
        if self.protocol not in PROTOCOLS:
            out.append(f"protocol {self.protocol!r} is not one of wsgi, asgi; choose one")
        if self.engine not in ENGINES:
            out.append(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}; choose one")
        elif self.protocol in PROTOCOLS and self.protocol not in ENGINE_PROTOCOLS[str(self.engine)]:
            fits = [e for e in ENGINES if self.protocol in ENGINE_PROTOCOLS[e]]
            out.append(f"{self.engine} does not serve {self.protocol.upper()} applications; "
                       f"choose {' or '.join(fits)}")
        if (self.module or "").endswith(".py") or not _DOTTED.match(self.module or ""):
            out.append(f"the module {self.module!r} is not a Python module name; "
                       "give it without .py, dotted for a package (mysite.wsgi)")
        # A plain name: gunicorn takes a name (or a call), not an attribute path.
        if not (self.callable or "").isidentifier():
            out.append(f"the callable {self.callable!r} is not a Python name (a variable of the module, "
                       "such as app or application); the default is app")
        if not 1 <= self.workers <= 64:
            out.append(f"workers must be between 1 and 64, not {self.workers}")
        if not 1 <= self.threads <= 256:
            out.append(f"threads must be between 1 and 256, not {self.threads}")
        reserved = sorted(RESERVED_ENV & set(self.env))
        if reserved:
            out.append(f"{', '.join(reserved)} is set by the portal from the path; remove it from the environment")
        if len(self.socket.encode()) > 107:
            out.append(f"the socket path {self.socket} is longer than the 107 bytes a unix socket allows; "
                       "use a shorter run directory")
        return out


def normalise_mount(mount: str) -> str:
    """``/flask/`` -> ``/flask``; the root is ``""`` (SCRIPT_NAME's spelling of it)."""
    mount = (mount or "").strip()
    if mount and not mount.startswith("/"):
        mount = "/" + mount
    return mount.rstrip("/")


def engine_module(engine: str) -> list[str]:
    """The modules an interpreter must import to run ``engine``."""
    try:
        return list(ENGINE_MODULES[engine])
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}") from None


def install_argv(python: str, engine: str) -> list[str]:
    """``[python, -m, pip, install, <engine pinned>]``: what installs ``engine`` for ``python``."""
    engine_module(engine)  # refuses an unknown engine
    return [python, "-m", "pip", "install", ENGINE_REQUIREMENTS[engine]]


def install_command(python: str, engine: str) -> str:
    """The exact command line that installs ``engine`` into ``python`` (for a refusal's message)."""
    return shlex.join(install_argv(python, engine))


def check_engine(python: str, engine: str, account: Any = None) -> Any:
    """None when ``python`` can run ``engine``; else a CheckFailure whose fix installs it.

    As ``portal.process.checks.check_modules`` does for a gateway's msgpack, with the pinned
    engine in the command (``fix_argv`` is what the page's button runs).
    """
    from portal.process.checks import CheckFailure, check_modules

    failure = check_modules(python, engine_module(engine), account=account)
    if failure is None or failure.code != "modules-missing":
        return failure
    if not failure.fix_argv:  # a distribution's own Python: pip may not install into it
        return CheckFailure("engine-missing", failure.message)
    missing = ", ".join((failure.fix_argv or [])[4:])  # [python, -m, pip, install, *missing]
    argv = install_argv(python, engine)
    command = shlex.join(argv)
    message = f"{python} cannot run {engine} ({missing} missing); install it with: {command}"
    return CheckFailure("engine-missing", message, fix=command, fix_argv=argv)


def engine_warnings(python: str, engine: str, account: Any = None) -> list[str]:
    """What ``engine`` will lack under ``python`` though it runs (uvicorn without websockets), each
    with what it means and how to add it; [] when nothing is missing (or the check cannot tell)."""
    from portal.process.checks import check_modules, externally_managed_fix

    warnings = []
    for module, without in ENGINE_EXTRAS.get(engine, {}).items():  # one module so far: one run each
        failure = check_modules(python, [module], account=account)
        if failure is not None and failure.code == "modules-missing":
            if failure.fix_argv:
                warnings.append(f"{python} lacks {module}: {without}. Add it with: {install_command(python, engine)}")
            else:
                warnings.append(f"{python} lacks {module}: {without}. {externally_managed_fix(python, [module])}")
    return warnings


# Command lines ---------------------------------------------------------------------------


def engine_argv(app: AppRun) -> list[str]:
    """The command that serves ``app`` on its socket (never run through a shell)."""
    problems = app.problems()
    if problems:
        raise ValueError("; ".join(problems))
    if app.engine == "gunicorn":
        return [
            # The keeper's socket, through systemd's protocol (see the launcher): no --bind.
            app.python, str(GUNICORN_LAUNCHER), "--fd", LISTEN_FD, "--",
            "--worker-class", "gthread", "--workers", str(app.workers), "--threads", str(app.threads),
            "--chdir", app.directory,
            # Only the front reaches the socket; it sets X-Forwarded-For/-Proto/-Host.
            "--forwarded-allow-ips", "*",
            # But a trusted forwarder may also set SCRIPT_NAME and PATH_INFO by header (gunicorn's
            # default forwarder_headers): a client's header would then move the mount. None, so
            # headers with an underscore are dropped and the mount is the environment's alone.
            "--forwarder-headers=",
            "--no-control-socket",
            "--graceful-timeout", str(int(STOP_TIMEOUT) - 2),
            app.target,
        ]
    if app.engine == "uvicorn":
        return [
            app.python, str(UVICORN_LAUNCHER), "--fd", LISTEN_FD, "--",
            "--app-dir", app.directory,
            "--workers", str(app.workers),
            "--forwarded-allow-ips", "*",
            "--timeout-graceful-shutdown", str(int(STOP_TIMEOUT) - 2),
        ]
    assert app.engine == "granian"
    argv = [
        app.python, str(GRANIAN_LAUNCHER), "--fd", LISTEN_FD, "--",
        "--interface", app.protocol,
        "--uds", app.socket,  # for granian's messages: the launcher serves the descriptor
        "--workers", str(app.workers),
        "--working-dir", app.directory,
        "--respawn-interval", "0.1",  # a reload retires the old worker 0.1 s after the new one starts
    ]
    if app.mount:
        argv += ["--url-path-prefix", app.mount]
    if app.protocol == "wsgi":
        argv += ["--blocking-threads", str(app.threads), "--no-ws"]
        return [*argv, f"{GRANIAN_WSGI}:app"]  # WEBAPP_TARGET, small answers in one piece
    return [*argv, app.target]


def engine_env(app: AppRun) -> dict[str, str]:
    """The application's environment: its own variables, then what the engine needs."""
    env = dict(app.env)
    env["SCRIPT_NAME"] = app.mount  # the mount from the environment, never from a request header
    env.setdefault("PYTHONUNBUFFERED", "1")  # output reaches the log as it is written
    if app.engine == "uvicorn" or (app.engine == "granian" and app.protocol == "wsgi"):
        env[TARGET_ENV] = app.target
    return env


def reload_settings(app: AppRun, ignore: list[str] | None = None) -> dict[str, Any]:
    """What the keeper watches in debug mode and how it reloads (``Spec.reload``)."""
    graceful = app.engine in ("gunicorn", "granian") or (app.engine == "uvicorn" and app.workers > 1)
    return {
        "paths": [app.directory],
        "patterns": list(RELOAD_PATTERNS),
        "ignore": list(ignore or []),
        "debounce": RELOAD_DEBOUNCE,
        "interval": RELOAD_INTERVAL,
        # A signal the engine answers by replacing its workers; None: the keeper restarts it.
        "signal": "SIGHUP" if graceful else None,
    }


def build_spec(app: AppRun, name: str | None = None, log_roots: list[str] | None = None,
               restart_policy: str = "on-failure", init_timeout: float = INIT_TIMEOUT,
               pass_env: list[str] | None = None) -> Spec:
    """The keeper's :class:`Spec` for ``app``: ready once the app answers over its socket,
    which the keeper binds at ``app.socket`` and hands down (``listen``).

    The probe asks for the mount's own page (``/flask/``) over the socket; any status below 500
    is an answer (a 404, a 400 for a host the app does not allow, or a redirect is a live app).
    In debug mode the keeper watches the application directory (``Spec.reload``).
    """
    probe = {"kind": "unix-http", "socket": app.socket, "path": (app.mount or "") + "/", "timeout": 2.0}
    listen = {"path": app.socket, "mode": SOCKET_MODE}
    ignore = []
    if app.log_file:
        ignore.append(os.path.dirname(app.log_file))
    return Spec(
        name=name or app.mount or "/",
        argv=engine_argv(app),
        env=engine_env(app),
        pass_env=list(pass_env or []),
        secret_env=[n for n in app.secret_env if n in app.env],
        cwd=app.directory,
        log_file=app.log_file,
        log_roots=log_roots,
        probe=probe,
        init_timeout=init_timeout,
        restart_policy=restart_policy,
        stop_timeout=STOP_TIMEOUT,
        reload=reload_settings(app, ignore) if app.debug else None,
        listen=listen,
    )
