"""Several hosts on this one machine, each a portal installation of its own.

A test that needs gateways (or web applications) on more than one host asks for ``two_hosts``,
or for ``multihost`` and its ``up(n, ...)``/``host(n)`` (the fixtures are registered for every test
file by the root conftest). Each host is what docs/operations.md ("Several hosts") tells an
operator to run on a machine of their own:

- its own ``var/`` (``PORTAL_VAR_DIR``) and hosted folder (``PORTAL_HOSTED_DIR``), so that its
  keepers' run directories, logs and routes file are its alone;
- the shared PostgreSQL database (``PORTAL_DATABASE_URL``), the shared Redis on TCP with a password
  (``REDIS_URL``) and the shared ``PORTAL_SECRET_KEY``;
- ``PORTAL_HOST_NAME=hostN`` and ``PORTAL_HOST_ADDRESS=127.0.0.(N+1)``: host 1 is 127.0.0.2, host 2
  127.0.0.3, ... (every 127.x address is this machine's loopback, so each host has an address of
  its own and a server bound to one is not reached at another);
- the launcher's two Celery workers (``portal@hostN`` on ``portal,host.hostN``, ``build@hostN`` on
  ``build.hostN``, with the launcher's arguments: portal/launcher.py ``build_parts``) and the asyncio
  front of the web applications on its own address, following the routes file of its own var/.

Host 1 is the portal's own machine as well: it also runs the web server (gunicorn, as the
launcher runs it but with one worker process) on 127.0.0.2, after ``collectstatic``, beat (once in
the whole installation, as the docs say), and has the first administrator, made by ``manage.py
ensure_admin`` (its password: ``Installation.admin_password``). Each worker reports its host every
second (``PORTAL_HOST_BEAT_SECONDS=1``), so that a host whose worker is gone is down after 4 s.

The database is one throwaway PostgreSQL cluster for the session (.ci/postgres.sh's recipe, in
Python): SQLite cannot be shared between machines. When PORTAL_DATABASE_URL already names a
PostgreSQL server (the PostgreSQL pass of CI), a fresh database is made there instead. Without
PostgreSQL's programs the tests that ask for a host are skipped, saying how to install them.

Everything is stopped and deleted at the end: the gateways and web applications the hosts
started (their keepers stop them), the hosts' processes, Redis, the cluster and the folders.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from conftest import NO_POSTGRES, wait_until
from portal import paths
from portal.queues import build_queue, worker_queues

BASE_DIR = paths.BASE_DIR
PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent
GRACE_SECONDS = 10
# What an installation's environment says of itself; the rest of this process's environment (PATH,
# HOME, the sandbox and hosted-user choices of the run) is the machine's and passes through.
OWN_VARIABLES = ("PORTAL_VAR_DIR", "PORTAL_HOSTED_DIR", "PORTAL_DATABASE_URL", "REDIS_URL", "PORTAL_SECRET_KEY",
                 "PORTAL_HOST_NAME", "PORTAL_HOST_ADDRESS", "PORTAL_HOST", "PORTAL_PORT", "PORTAL_APPS_PORT",
                 "PORTAL_HOST_BEAT_SECONDS", "PORTAL_ADMIN_PASSWORD", "PORTAL_ALLOWED_HOSTS", "PORTAL_TEST_VAR_OF",
                 "PORTAL_TEST_BASETEMP", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "PYTEST_XDIST_WORKER",
                 "PYTEST_XDIST_WORKER_COUNT", "PYTEST_CURRENT_TEST")
SKIP_REASON = (f"{NO_POSTGRES}: the hosts share a PostgreSQL database and its programs (initdb, pg_ctl) are not "
               "installed: `sudo apt-get install -y postgresql` installs them (.ci/run does)")


_handed_out: set[int] = set()


def free_port(address: str) -> int:
    """A port free on ``address`` now, and not one handed out before for any address: the hosts'
    ports then differ, so that a test finding nothing at another host's address on one means it."""
    while True:
        with socket.socket() as s:
            s.bind((address, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _stop(process: subprocess.Popen | None, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to the process's session (it was started in one of its own), SIGKILL after ``grace``;
    whatever of the session is left (a worker's pool processes) goes too."""
    if process is None:
        return
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


# PostgreSQL -----------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl: PORTAL_TEST_POSTGRES when set (a folder; one without them,
    e.g. ``none``, runs the tests as on a machine without PostgreSQL), else as .ci/postgres.sh
    finds them (Debian's newest, then the PATH)."""
    if wanted := os.environ.get("PORTAL_TEST_POSTGRES", "").strip():
        folder = Path(wanted)
        return folder if all(os.access(folder / p, os.X_OK) for p in ("initdb", "pg_ctl")) else None
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(f.split("/")[-2])
                         if f.split("/")[-2].isdigit() else 0, reverse=True):
        if os.access(os.path.join(folder, "initdb"), os.X_OK) and os.access(os.path.join(folder, "pg_ctl"), os.X_OK):
            return Path(folder)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl", path=str(Path(found).parent)):
        return Path(found).parent
    return None


class Postgres:
    """A throwaway cluster in a folder of its own, reached only on a unix socket in that folder:
    no TCP port to collide with, trust for local connections (nothing secret), durability off."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        # The folder's name goes into the URL's host part, which URL parsers lower-case: hex only.
        self.dir = Path(f"/tmp/portal-pg-{secrets.token_hex(8)}")
        self.owner: str | None = None
        self.started = False

    def _as_owner(self, argv: list[str]) -> list[str]:
        # initdb and pg_ctl refuse root: the cluster is then run by `postgres` (Debian's), or `nobody`.
        return ["runuser", "-u", self.owner, "--", *argv] if self.owner else argv

    def start(self) -> str:
        import pwd

        self.dir.mkdir(mode=0o700)
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
                self.owner = "postgres"
            except KeyError:
                self.owner = "nobody"
            shutil.chown(self.dir, self.owner)
        data = self.dir / "data"
        initdb = subprocess.run(
            self._as_owner([str(self.bin / "initdb"), "-D", str(data), "-U", "portal", "--auth=trust",
                            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]),
            capture_output=True, text=True, check=False,
        )
        if initdb.returncode:
            raise RuntimeError(f"initdb failed (code {initdb.returncode}): {initdb.stdout}{initdb.stderr}")
        options = (f"-c listen_addresses='' -c unix_socket_directories='{self.dir}' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        log = self.dir / "postgres.log"
        started = subprocess.run(
            self._as_owner([str(self.bin / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", "60",
                            "-s", "-o", options]),
            capture_output=True, text=True, check=False,
        )
        self.started = True
        if started.returncode:
            raise RuntimeError(f"PostgreSQL did not start (code {started.returncode}): "
                               f"{started.stderr}{log.read_text(errors='replace') if log.exists() else ''}")
        return create_database(f"postgres://portal@{quote(str(self.dir), safe='')}/postgres")

    def stop(self) -> None:
        if self.started:
            subprocess.run(self._as_owner([str(self.bin / "pg_ctl"), "stop", "-D", str(self.dir / "data"),
                                           "-m", "immediate", "-s"]), capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def create_database(server_url: str) -> str:
    """A new, empty database on the server of ``server_url``; the URL that names it."""
    import psycopg

    name = f"multihost_{secrets.token_hex(4)}"
    with psycopg.connect(_conninfo(server_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(server_url)._replace(path="/" + name).geturl()


def drop_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(_conninfo(urlsplit(url)._replace(path="/postgres").geturl()), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _conninfo(url: str) -> str:
    """A URL with the socket folder as its host (percent-encoded), as libpq wants it."""
    import dj_database_url

    parsed = dj_database_url.parse(url)
    parts = {"host": parsed.get("HOST"), "port": parsed.get("PORT"), "user": parsed.get("USER"),
             "password": parsed.get("PASSWORD"), "dbname": parsed.get("NAME")}
    from psycopg.conninfo import make_conninfo

    return make_conninfo(**{k: str(v) for k, v in parts.items() if v})


# Redis ----------------------------------------------------------------------------------------


class Redis:
    """A real redis-server on 127.0.0.1:PORT with a password, as a Redis shared by several hosts
    is (docs/operations.md). The password is in a 0600 config file, never on a command line."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.port = free_port("127.0.0.1")
        self.password = secrets.token_urlsafe(24)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from portal.redis_server import find_redis_server

        paths.mkdir_private(self.dir)
        config = self.dir / "redis.conf"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"bind 127.0.0.1\nport {self.port}\nrequirepass {self.password}\ndir {self.dir}\n"
                    f"save \"\"\nappendonly no\ndaemonize no\nlogfile {self.dir / 'redis.log'}\n")
        self.process = subprocess.Popen([find_redis_server(), str(config)], stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def wait_answering(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)

        def pong() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited with code {self.process.returncode}: see "
                                     f"{self.dir / 'redis.log'}")
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_until(pong, timeout=15, interval=0.02, message="the shared redis-server did not answer")

    def stop(self) -> None:
        _stop(self.process)


# The shared services ------------------------------------------------------------------------


@dataclass
class Services:
    """What every host shares: the database, Redis, the secret key; and a Celery app of this
    process that reaches the hosts' workers through that Redis."""

    database_url: str
    redis_url: str
    secret_key: str
    folder: Path
    seconds: dict[str, float] = field(default_factory=dict)

    def celery(self):  # type: ignore[no-untyped-def]
        if not hasattr(self, "_celery"):
            from celery import Celery

            # Only the control channel (ping, active_queues): no task is sent from here.
            self._celery = Celery("multihost", broker=self.redis_url, set_as_current=False)
            self._celery.conf.broker_connection_retry_on_startup = False
        return self._celery


def base_env(services: Services) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    env.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "PORTAL_SECRET_KEY": services.secret_key,
        "PYTHONUNBUFFERED": "1",
        # Each worker reports its host every second (5 by default), so that a host whose worker is gone
        # is shown as down after 4 s rather than 20: the tests wait for it.
        "PORTAL_HOST_BEAT_SECONDS": "1",
    })
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(BASE_DIR / "manage.py"), *args], env=env, cwd=BASE_DIR,
                          capture_output=True, text=True, timeout=timeout, check=False)


class NoPostgres(Exception):
    """PostgreSQL's programs cannot be had here: the message says how to install them."""


@contextlib.contextmanager
def shared_services() -> Iterator[Services]:
    """The database and Redis that all hosts share, migrated once (for the tests, once a session:
    ``multihost_services``; bench/edge.py uses it too). NoPostgres without PostgreSQL's programs."""
    started = time.monotonic()
    own_url = os.environ.get("PORTAL_DATABASE_URL", "")
    on_server = own_url.startswith(("postgres://", "postgresql://", "pgsql://"))
    bin_dir = None if on_server else postgres_bin()
    if not on_server and bin_dir is None:
        if wanted := os.environ.get("PORTAL_TEST_POSTGRES", "").strip():
            raise NoPostgres(f"{NO_POSTGRES}: PORTAL_TEST_POSTGRES={wanted!r} is no folder of initdb and pg_ctl "
                             "(unset it to use the installed ones)")
        raise NoPostgres(SKIP_REASON)
    folder = Path(tempfile.mkdtemp(prefix="portal-multihost-"))
    folder.chmod(0o711)  # the hosted users pass through it to their own folders (var-hosted)
    redis = Redis(folder / "redis")
    cluster = None if on_server else Postgres(bin_dir)
    database_url = ""
    try:
        redis.start()  # while the cluster is made
        database_url = create_database(own_url) if on_server else cluster.start()
        services = Services(database_url, redis.url, secrets.token_urlsafe(40), folder)
        services.seconds["database"] = time.monotonic() - started
        migrated = manage({**base_env(services), "PORTAL_VAR_DIR": str(folder / "migrate-var")},
                          "migrate", "--noinput")
        assert migrated.returncode == 0, f"manage.py migrate failed:\n{migrated.stdout}{migrated.stderr}"
        redis.wait_answering()
        services.seconds["services"] = time.monotonic() - started
        yield services
    finally:
        redis.stop()
        if cluster is not None:
            cluster.stop()
        elif database_url:
            drop_database(database_url)
        shutil.rmtree(folder, ignore_errors=True)



@pytest.fixture(scope="session")
def multihost_services() -> Iterator[Services]:
    """The database and Redis that all hosts share, for the whole session (skipped without PostgreSQL)."""
    try:
        with shared_services() as services:
            yield services
    except NoPostgres as e:
        pytest.skip(str(e))


# The hosts ------------------------------------------------------------------------------------


class Installation:
    """Host ``number``: a portal installation of its own on 127.0.0.(number + 1)."""

    def __init__(self, services: Services, number: int, web: bool = False) -> None:
        self.services = services
        self.number = number
        self.name = f"host{number}"
        self.address = f"127.0.0.{number + 1}"
        self.web = web
        self.root = services.folder / self.name
        self.root.mkdir()
        self.root.chmod(0o711)  # whatever the umask: the hosted users pass through to var-hosted
        self.var = self.root / "var"
        self.hosted = self.root / "var-hosted"
        self.front_port = free_port(self.address)
        self.web_port = free_port(self.address) if web else None
        self.admin_password = secrets.token_urlsafe(16) if web else None
        self.env = base_env(services)
        self.env.update({
            "PORTAL_VAR_DIR": str(self.var),
            "PORTAL_HOSTED_DIR": str(self.hosted),
            "PORTAL_HOST_NAME": self.name,
            "PORTAL_HOST_ADDRESS": self.address,
            "PORTAL_HOST": self.address,
            "PORTAL_APPS_PORT": str(self.front_port),
        })
        if web:
            self.env["PORTAL_PORT"] = str(self.web_port)
        self.worker: subprocess.Popen | None = None
        self.build_worker: subprocess.Popen | None = None
        self.front: subprocess.Popen | None = None
        self.web_server: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self._setup: list[tuple[str, subprocess.Popen]] = []

    def __repr__(self) -> str:
        return f"<{self.name} at {self.address}>"

    # Its parts, as portal/launcher.py starts them ------------------------------------------------

    @property
    def node(self) -> str:
        return f"portal@{self.name}"

    @property
    def build_node(self) -> str:
        return f"build@{self.name}"

    @property
    def url(self) -> str:
        """The portal's pages (host 1 only)."""
        assert self.web, f"{self.name} runs no web server: the portal's pages are host 1's"
        return f"http://{self.address}:{self.web_port}"

    @property
    def front_url(self) -> str:
        return f"http://{self.address}:{self.front_port}"

    @property
    def log_dir(self) -> Path:
        return self.var / "log"

    def _popen(self, argv: list[str], log_name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        paths.mkdir_private(self.log_dir)
        log = open(self.log_dir / log_name, "ab")
        try:
            return subprocess.Popen(argv, env=env or self.env, cwd=BASE_DIR, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, umask=0o077)
        finally:
            log.close()

    def _worker_argv(self, node: str, queues: list[str]) -> list[str]:
        return [str(VENV_BIN / "celery"), "-A", "portal.celery", "worker", "--hostname", node,
                "--queues", ",".join(queues), "--concurrency", "2", "--loglevel", "INFO"]

    def start_worker(self) -> None:
        """The host's worker (``portal@hostN``), e.g. again after ``kill_worker``."""
        self.worker = self._popen(self._worker_argv(self.node, worker_queues(self.name)), "worker.log")

    def start(self) -> None:
        """Start its parts without waiting for one; ``wait_answering`` waits for them all (and starts
        host 1's web server once collectstatic has written the manifest it reads)."""
        paths.mkdir_private(self.var)
        self.start_worker()
        self.build_worker = self._popen(self._worker_argv(self.build_node, [build_queue(self.name)]),
                                        "build-worker.log")
        # The front needs no secret: it reads the routes file its host's portal writes.
        front_env = {k: v for k, v in self.env.items() if k not in ("PORTAL_SECRET_KEY", "PORTAL_DATABASE_URL")}
        front = self.var / "front"
        self.front = self._popen([PYTHON, "-m", "webapps.front", "--listen", f"{self.address}:{self.front_port}",
                                  "--routes", str(front / "routes.json"), "--metrics", str(front / "metrics.json")],
                                 "front.log", front_env)
        if not self.web:
            return
        self._setup = [
            ("ensure_admin", self._popen([PYTHON, "manage.py", "ensure_admin"], "setup.log",
                                         {**self.env, "PORTAL_ADMIN_PASSWORD": self.admin_password})),
            ("collectstatic", self._popen([PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], "setup.log")),
        ]
        self.beat = self._popen([str(VENV_BIN / "celery"), "-A", "portal.celery", "beat",
                                 "--schedule", str(self.var / "celerybeat-schedule"),
                                 "--pidfile", str(self.var / "run" / "celerybeat.pid"), "--loglevel", "INFO"],
                                "beat.log")

    def _exited(self) -> str:
        for part, log in ((self.worker, "worker.log"), (self.build_worker, "build-worker.log"),
                          (self.front, "front.log"), (self.web_server, "web.log"), (self.beat, "beat.log")):
            if part is not None and part.poll() is not None:
                return f"{self.name}: a part exited with code {part.returncode}; {self._tail(log)}"
        return ""

    def pong(self, nodes: list[str] | None = None) -> set[str]:
        """The nodes of this host that answer a Celery ping now."""
        nodes = nodes or [self.node, self.build_node]
        answers = self.services.celery().control.ping(destination=nodes, timeout=0.5) or []
        return {node for answer in answers for node in answer} & set(nodes)

    def queues(self, node: str | None = None) -> set[str]:
        """The queues the worker ``node`` (default: the host's) says it consumes."""
        node = node or self.node
        answer = self.services.celery().control.inspect(destination=[node], timeout=1.0).active_queues() or {}
        return {queue["name"] for queue in answer.get(node, [])}

    def wait_answering(self, timeout: float = 60) -> None:
        """Until the host's workers answer a ping, its front accepts connections, and (host 1) its
        administrator exists and its web server serves the login page."""
        nodes = [self.node, self.build_node] if self.build_worker is not None else [self.node]
        self._wait(lambda: self.pong(nodes) == set(nodes), timeout, "its workers did not answer a ping",
                   "worker.log")
        if self.front is not None:
            self._wait(lambda: _connects(self.address, self.front_port), timeout,
                       f"its front did not listen on {self.address}:{self.front_port}", "front.log")
        for step, process in self._setup:
            code = process.wait(timeout)
            assert code == 0, f"{self.name}: manage.py {step} failed; {self._tail('setup.log')}"
        self._setup = []
        if self.web and self.web_server is None:
            # After collectstatic, as the launcher starts it: the pages name the static files by the
            # manifest it writes, which the web server reads once.
            self.web_server = self._popen([
                str(VENV_BIN / "gunicorn"), "portal.wsgi:application", "--bind", f"{self.address}:{self.web_port}",
                "--worker-class", "gthread", "--workers", "1", "--threads", "4",
                "--access-logfile", str(self.log_dir / "access.log"), "--error-logfile", "-",
                "--graceful-timeout", "5", "--no-control-socket",
            ], "web.log")
        if self.web:
            self._wait(lambda: _answers(f"{self.url}/login/"), timeout,
                       f"its web server did not serve {self.url}/login/", "web.log")
        # The portal knows a host once its worker has reported it (processes/hosts.py): before, a
        # request for it is answered "no worker".
        self._wait(self._reported, timeout, "its worker never reported the host", "worker.log")

    def _reported(self) -> bool:
        result = self.manage("shell", "-c", "from processes.models import Host; from django.utils import timezone; "
                             f"import datetime as dt; print(Host.objects.filter(name={self.name!r}, "
                             "seen_at__gte=timezone.now() - dt.timedelta(seconds=3)).exists())")
        return result.returncode == 0 and result.stdout.strip().endswith("True")

    def _tail(self, log: str) -> str:
        """The end of one of the host's logs, for a message (the folder is deleted at the end)."""
        try:
            text = (self.log_dir / log).read_text(errors="replace")[-3000:]
        except OSError as exc:
            return f"{self.log_dir / log} cannot be read ({exc.strerror})"
        return f"{self.log_dir / log} ends:\n{text}"

    def _wait(self, predicate, timeout: float, failure: str, log: str) -> None:  # type: ignore[no-untyped-def]
        try:
            wait_until(lambda: self._alive() and predicate(), timeout=timeout, interval=0.05)
        except AssertionError as exc:
            if str(exc).startswith(self.name):  # a part exited: _exited's message says which
                raise
            raise AssertionError(f"{self.name}: {failure} within {timeout:g} s; {self._tail(log)}") from None

    def _alive(self) -> bool:
        if problem := self._exited():
            raise AssertionError(problem)
        return True

    def kill_worker(self) -> None:
        """SIGKILL to the host's worker and its pool, as a machine that loses it would; its keepers
        (own sessions) and what they keep run on."""
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
        if self.worker is not None:
            self.worker.wait()

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``manage.py ARGS`` as this host's operator would run it there."""
        return manage(self.env, *args, timeout=timeout)

    def stop(self) -> None:
        """Stop the host's parts (SIGTERM, SIGKILL after the grace), all at once as the launcher does,
        then what its keepers keep (gateways, web applications, programs)."""
        parts = [self.front, self.web_server, self.beat, self.build_worker, self.worker]
        for part in parts:
            if part is not None and part.poll() is None:
                os.killpg(part.pid, signal.SIGTERM)
        for part in parts:
            _stop(part)
        for _, process in self._setup:
            _stop(process)
        stop_keepers(self.var / "run")

    def run_dirs(self, kind: str = "gateways") -> list[Path]:
        root = self.var / "run" / kind
        return sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []


def stop_keepers(run_root: Path) -> None:
    """Stop every keeper under ``run_root`` and what it keeps, as conftest's gateway fixtures do."""
    from portal.process import keeper, rundir

    for kind in ("gateways", "webapps", "programs"):
        folder = run_root / kind
        if not folder.is_dir():
            continue
        for run_dir in folder.iterdir():
            if run_dir.is_dir() and rundir.keeper_alive(run_dir):
                keeper.request_stop(run_dir, timeout=15, trigger="test")


def _connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Hosts:
    """The hosts of a test module; ``host(n)`` brings host n up (host 1 with the web server)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.started: dict[int, Installation] = {}
        self.seconds: dict[str, float] = {}

    def up(self, *numbers: int) -> list[Installation]:
        """Hosts ``numbers``, brought up together (each started, then all waited for)."""
        began = time.monotonic()
        new = [Installation(self.services, n, web=n == 1) for n in numbers if n not in self.started]
        for installation in new:
            self.started[installation.number] = installation
            installation.start()
        for installation in new:
            installation.wait_answering()
        if new:
            self.seconds[",".join(str(i.number) for i in new)] = time.monotonic() - began
        return [self.started[n] for n in numbers]

    def host(self, number: int) -> Installation:
        return self.up(number)[0]

    def stop(self) -> None:
        for installation in self.started.values():
            try:
                installation.stop()
            finally:
                shutil.rmtree(installation.root, ignore_errors=True)
        self.started.clear()


@contextlib.contextmanager
def hosts_up(services: Services, *numbers: int) -> Iterator[list[Installation]]:
    """Hosts ``numbers`` up (host 1 with the portal's pages), stopped and deleted at the end."""
    hosts = Hosts(services)
    try:
        yield hosts.up(*numbers)
    finally:
        hosts.stop()


@pytest.fixture(scope="module")
def multihost(multihost_services: Services) -> Iterator[Hosts]:
    """The hosts of this module (``multihost.host(2)``), stopped and deleted at its end."""
    hosts = Hosts(multihost_services)
    try:
        yield hosts
    finally:
        hosts.stop()


@pytest.fixture(scope="module")
def two_hosts(multihost: Hosts) -> tuple[Installation, Installation]:
    """Hosts 1 (127.0.0.2, with the portal's pages) and 2 (127.0.0.3), up and answering."""
    first, second = multihost.up(1, 2)
    return first, second
