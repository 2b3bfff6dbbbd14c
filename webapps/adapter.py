"""From a web application definition to what the process layer runs: its run directory,
socket, log file, and the checks made before a start.

The engines' command lines come from webapps/runtime/ (no Django there); this module
turns a WebApp row into their arguments.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

from portal import paths
from portal.process.checks import CheckFailure, check_log_file
from webapps.models import WebApp

SOCKET_NAME = "app.sock"


def run_dir(webapp: WebApp) -> Path:
    return paths.RUN_DIR / "webapps" / str(webapp.run_key)


def socket_path(webapp: WebApp) -> Path:
    """The unix socket the engine listens on, which the front connects to."""
    return run_dir(webapp) / SOCKET_NAME


def log_folder() -> Path:
    return paths.LOG_DIR.resolve() / "webapps"


def log_name(path: str) -> str:
    """A file name for an application's path: "/" becomes "+", which a path cannot hold, so two
    applications never share a default log (``/a/b`` and ``/a_b`` give ``a+b`` and ``a_b``)."""
    return path.strip("/").replace("/", "+") + ".log"


def default_log_path(webapp: WebApp) -> Path:
    return log_folder() / log_name(webapp.name or "/app")


def log_path(webapp: WebApp) -> Path:
    return Path(webapp.log_file) if webapp.log_file else default_log_path(webapp)


def log_file_problem(webapp: WebApp, path: str | None = None) -> CheckFailure | None:
    """Why this application may not write or show ``path`` (default: its log file), or None."""
    path = path or str(log_path(webapp))
    own = str(default_log_path(webapp))
    real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    folder = str(log_folder())
    if real != own and (real == folder or real.startswith(folder + os.sep)):
        return CheckFailure(
            "log-file-other-webapp",
            f"{path} is in {folder}, which holds each web application's default log: choose another folder "
            "(log files may be in var/log/ or a folder set in PORTAL_LOG_ROOTS), or leave the field blank "
            "for the default log",
        )
    return check_log_file(
        path,
        settings.PORTAL_LOG_ROOTS,
        var_dir=str(paths.VAR_DIR),
        run_dir=str(run_dir(webapp)),
        own_default=own,
    )
