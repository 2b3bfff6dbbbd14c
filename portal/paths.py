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
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR") or BASE_DIR / "var").resolve()
REDIS_DIR = VAR_DIR / "redis"
REDIS_SOCKET = REDIS_DIR / "redis.sock"
LOG_DIR = VAR_DIR / "log"
RUN_DIR = VAR_DIR / "run"
# The hosted processes' own folders (their homes: socket, virtualenv, caches), outside var/, which
# stays the portal's alone (0700): a process that runs as a user of its own cannot even pass it.
HOSTED_DIR = Path(os.environ.get("PORTAL_HOSTED_DIR") or VAR_DIR.parent / f"{VAR_DIR.name}-hosted").resolve()
# The front on the apps port: the routes file the portal writes, the figures the front writes,
# and (when nginx is the front) nginx's config, pid file, logs and temp folders.
FRONT_DIR = VAR_DIR / "front"
ROUTES_FILE = FRONT_DIR / "routes.json"
FRONT_METRICS_FILE = FRONT_DIR / "metrics.json"
NGINX_DIR = FRONT_DIR / "nginx"
# The embedded Redis's password: the socket's mode keeps other users out, the password keeps out
# the code the portal runs as its own user (gateways, web applications), which can reach the socket.
REDIS_PASSWORD_FILE = VAR_DIR / "redis_password"
# What a password may hold: it goes into a URL and into a line of redis-server's config file
# (which echoes a line it cannot parse into its log), so only URL-safe characters, as
# secrets.token_urlsafe makes.
_REDIS_PASSWORD = re.compile(r"[A-Za-z0-9_.~-]{16,}")


def private_secret(path: Path, new_secret: str) -> str:
    """The secret kept in ``path``; ``new_secret`` is written there first (0600) when the file is missing.

    O_EXCL: when two processes start at once (the web server, the workers, a manage.py
    command), the first one's secret is the one they all read.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    mkdir_private(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(new_secret)
    return new_secret


def redis_password() -> str:
    """The embedded Redis's password, from var/redis_password (made on first use).

    Read from the file by every process that needs it (the settings, the launcher, the
    test suite), never passed in an environment variable or on a command line.
    """
    password = private_secret(REDIS_PASSWORD_FILE, secrets.token_urlsafe(32))
    if not _REDIS_PASSWORD.fullmatch(password):
        # The message does not quote the file: what is in it is meant to be a secret.
        raise RuntimeError(
            f"{REDIS_PASSWORD_FILE} does not hold a usable Redis password (at least 16 letters, digits, "
            "'-', '_', '.' or '~'): delete the file and start the portal again, which makes a new one."
        )
    return password


def embedded_redis_url() -> str:
    # kombu's form for a unix socket with a password (redis-py's is unix://:PASSWORD@/path);
    # kombu and Celery print it with the password masked (redis+socket://:**@/...).
    return f"redis+socket://:{redis_password()}@{REDIS_SOCKET}"


def redis_url() -> str:
    """``REDIS_URL`` when set, otherwise the embedded Redis's socket, with its password."""
    return os.environ.get("REDIS_URL") or embedded_redis_url()


# Debian's place for nginx, looked at when it is not on the PATH (sbin is not on every user's PATH).
NGINX = "/usr/sbin/nginx"


def find_nginx(env: Mapping[str, str] | None = None) -> str | None:
    """The nginx binary the front runs, or None when there is none.

    PORTAL_NGINX, when set, is the only place looked at: a path, or a name looked up on the PATH;
    one that names no executable (e.g. PORTAL_NGINX=none) means that nginx is not installed, so
    the asyncio front serves and the nginx tests skip on a machine that has it. Otherwise nginx on
    the PATH, else /usr/sbin/nginx. The launcher, the nginx runner (webapps.front.nginx) and the
    test suite all look here, so they agree on whether there is one. ``env`` is the environment
    to read (default: this process's).
    """
    env = os.environ if env is None else env
    search = env.get("PATH", os.defpath)
    wanted = env.get("PORTAL_NGINX", "").strip()
    if wanted:
        return shutil.which(wanted, path=search)
    return shutil.which("nginx", path=search) or (NGINX if os.access(NGINX, os.X_OK) else None)


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
    not var/'s to fix. Two things are left as they are: a unix socket (an
    application's is its keeper's, for the fronts; the 0700 folders above it
    keep everyone else out), and what lies inside a virtualenv (any folder with
    a pyvenv.cfg: thousands of files whose modes pip chose; the virtualenv's own
    folder is made private, which closes it). Every Django process runs this at
    start, so it must stay a quick walk.
    """
    import stat

    root = root or VAR_DIR
    fixed: list[str] = []

    def fix(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode) or stat.S_ISSOCK(st.st_mode) or not st.st_mode & 0o077:
            return
        old = stat.S_IMODE(st.st_mode)
        new = old & ~0o077
        try:
            os.chmod(path, new)
        except OSError as exc:
            fixed.append(f"{path} is mode {old:04o} and could not be made {new:04o} ({exc.strerror}): "
                         f"run chmod go-rwx {path} as its owner")
            return
        how = "readable by other users" if old & 0o044 else "open to other users"
        fixed.append(f"{path} was mode {old:04o}, {how}: made it {new:04o}")

    if not root.exists():
        return fixed
    fix(str(root))
    for folder, dirs, files in os.walk(root):
        for name in files:
            fix(os.path.join(folder, name))
        for name in list(dirs):
            path = os.path.join(folder, name)
            fix(path)
            if os.path.exists(os.path.join(path, "pyvenv.cfg")):
                dirs.remove(name)  # a virtualenv: closed by its own folder's mode, not walked
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
