"""Where the portal keeps what must persist. Imports nothing from Django.

Everything that must survive a restart (SQLite database, Redis data, logs, the
run directories of process keepers) lives under ``var/`` at the project root,
or under ``PORTAL_VAR_DIR`` when set. The web server, the Celery worker, the
launcher and management commands run in another terminal all compute the same
paths, so they meet the same database and the same embedded Redis without any
extra settings.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR") or BASE_DIR / "var").resolve()
REDIS_DIR = VAR_DIR / "redis"
REDIS_SOCKET = REDIS_DIR / "redis.sock"
LOG_DIR = VAR_DIR / "log"
RUN_DIR = VAR_DIR / "run"


def ensure_dirs() -> None:
    """Create var/ and the folders in it that the portal writes to, whatever is configured.

    Called when the settings load and by the launcher, so that nothing depends
    on another step (such as writing a generated secret key) having created them.
    """
    for folder in (VAR_DIR, LOG_DIR, RUN_DIR, REDIS_DIR):
        folder.mkdir(parents=True, exist_ok=True)


def embedded_redis_url() -> str:
    return f"redis+socket://{REDIS_SOCKET}"


def redis_url() -> str:
    """``REDIS_URL`` when set, otherwise the embedded Redis's socket."""
    return os.environ.get("REDIS_URL") or embedded_redis_url()


def this_host() -> str:
    """The host name this machine's worker serves (PORTAL_HOST_NAME, or the machine's)."""
    import socket

    return os.environ.get("PORTAL_HOST_NAME") or socket.gethostname()
