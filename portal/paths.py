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
# The front on the apps port: the routes file the portal writes, the figures the front writes,
# and (when nginx is the front) nginx's config, pid file, logs and temp folders.
FRONT_DIR = VAR_DIR / "front"
ROUTES_FILE = FRONT_DIR / "routes.json"
FRONT_METRICS_FILE = FRONT_DIR / "metrics.json"
NGINX_DIR = FRONT_DIR / "nginx"


def embedded_redis_url() -> str:
    return f"redis+socket://{REDIS_SOCKET}"


def redis_url() -> str:
    """``REDIS_URL`` when set, otherwise the embedded Redis's socket."""
    return os.environ.get("REDIS_URL") or embedded_redis_url()


def this_host() -> str:
    """The host name this machine's worker serves (PORTAL_HOST_NAME, or the machine's)."""
    import socket

    return os.environ.get("PORTAL_HOST_NAME") or socket.gethostname()


# Private files ----------------------------------------------------------------
# var/ holds the database (every gateway's verifier, the sessions), the secret
# key and the Redis data: no other local user may read any of it.

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """From here on this process creates files 0600 and folders 0700.

    Called first thing by every entry point that writes under var/ (the
    settings, the launcher, the keeper), so that nothing is ever created
    readable by others, not even for the moment before a chmod.
    """
    os.umask(PRIVATE_UMASK)


def mkdir_private(path: Path) -> None:
    """``mkdir -p`` with 0700 for every folder it creates.

    Path.mkdir(parents=True) creates the parents with the default mode,
    ignoring ``mode``; this one does not.
    """
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass


def ensure_dirs() -> None:
    """Create var/ and the folders the portal writes to (0700), whatever is configured.

    Called when the settings load and by the launcher, so that nothing depends
    on another step (such as writing a generated secret key) having created them.
    """
    for folder in (VAR_DIR, LOG_DIR, REDIS_DIR, RUN_DIR, FRONT_DIR):
        mkdir_private(folder)


def fix_modes(root: Path | None = None) -> list[str]:
    """Take group and other permissions off everything under var/.

    Returns one line per path it fixed (or could not fix), for the caller to
    show. Symbolic links are neither followed nor changed: a link's target is
    not var/'s to fix.
    """
    import stat

    root = root or VAR_DIR
    fixed: list[str] = []

    def fix(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077:
            return
        old = stat.S_IMODE(st.st_mode)
        new = old & ~0o077
        try:
            os.chmod(path, new)
        except OSError as exc:
            fixed.append(f"{path} is mode {old:04o} and could not be made {new:04o} ({exc.strerror}): "
                         f"run chmod go-rwx {path} as its owner")
            return
        fixed.append(f"{path} was mode {old:04o}, readable by other users: made it {new:04o}")

    if not root.exists():
        return fixed
    fix(str(root))
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            fix(os.path.join(folder, name))
    return fixed


# Log files ----------------------------------------------------------------------


def log_roots() -> list[Path]:
    """The folders gateway log files may be in: var/log/ and PORTAL_LOG_ROOTS.

    PORTAL_LOG_ROOTS is a list of absolute folders separated by os.pathsep
    (":"); each is resolved, so a root given through a symbolic link is the
    folder it points to.
    """
    roots = [LOG_DIR.resolve()]
    for entry in (os.environ.get("PORTAL_LOG_ROOTS") or "").split(os.pathsep):
        entry = entry.strip()
        if entry and os.path.isabs(entry):
            roots.append(Path(entry).resolve())
    return roots
