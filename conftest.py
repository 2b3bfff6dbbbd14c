"""Shared fixtures: users of each role, a real Redis, a real Celery worker, a real browser.

The suite runs under portal.test_settings: a private var/ folder in /tmp, its
own embedded Redis on a unix socket, and a test database that the worker process
opens too: a SQLite file, or with PORTAL_DATABASE_URL=postgres://… PostgreSQL's
test_<name> database on that server.

Two programs pip cannot install: nginx (the tests marked ``needs_nginx``, or asking
for the ``nginx`` fixture) and Chromium (the tests marked ``browser``). Without
them those tests skip, saying so, and the end of the run counts them with the
command that installs them. The suite finds nginx as the portal does
(``portal.paths.find_nginx``), so ``PORTAL_NGINX=none`` runs it as on a machine
without nginx; ``PORTAL_TEST_CHROMIUM=none`` does the same for Chromium. PostgreSQL's programs
likewise, for the tests of several hosts on this machine, which share a cluster they start
(portal/tests/multihost.py; ``PORTAL_TEST_POSTGRES=none``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client

from portal import paths, redis_server
from portal.roles import ADMINISTRATOR, OPERATOR, VIEWER

# Several hosts on this machine, each a portal installation of its own: the fixtures multihost_services,
# multihost and two_hosts, for any test file.
pytest_plugins = ["portal.tests.multihost"]

ROLES = ["anonymous", "viewer", "operator", "administrator"]
PASSWORD = "correct-horse-battery"
CHROMIUM = "/usr/bin/chromium"
# What the skip reasons begin with: the summary at the end counts the tests skipped for each.
NO_NGINX = "no nginx"
NO_CHROMIUM = "no Chromium"
NO_POSTGRES = "no PostgreSQL"  # portal/tests/multihost.py: its hosts share a cluster of their own
# The package that installs each program, and what the summary calls it.
PROGRAMS = {"nginx": "nginx", "chromium": "Chromium", "postgresql": "PostgreSQL"}


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, message: str = ""
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        time.sleep(interval)


def log_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    """Log ``username`` (a user of the role fixtures) in through the login page of a real browser."""
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


# The database between tests ---------------------------------------------------


def _retry_flush_on_deadlock() -> None:
    """Between transactional tests Django empties every table with one TRUNCATE.

    On PostgreSQL that TRUNCATE can deadlock with the real worker's watcher, which
    reads the same tables a few times a second; PostgreSQL then rolls the TRUNCATE
    back (it is the victim), and trying again a moment later is the remedy. SQLite
    never deadlocks here: it waits for its one lock.
    """
    from django.core.management.base import CommandError
    from django.test import TransactionTestCase

    teardown = TransactionTestCase._fixture_teardown

    def fixture_teardown(self):  # type: ignore[no-untyped-def]
        for attempt in range(5):
            try:
                return teardown(self)
            except CommandError as e:
                if "deadlock detected" not in str(e.__cause__) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        return None

    TransactionTestCase._fixture_teardown = fixture_teardown


_retry_flush_on_deadlock()


# Folders the hosted processes read ---------------------------------------------
# When the suite runs as root, every gateway and web application it starts runs as a user of its
# own (portal/process/accounts.py), which must be able to pass through the test's folders and read
# the applications written there, as an operator's application folder is (0755, files 0644). pytest
# makes its folders 0700 and the settings set the portal's private umask (077) in this process.


def pytest_configure(config: pytest.Config) -> None:
    """A folder of this run's own for pytest's temporary folders, unless --basetemp names one:
    pytest's shared /tmp/pytest-of-USER is made 0700 again by every run that starts (CI runs two
    suites at once), and the hosted users must pass through it."""
    if not config.option.basetemp:
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="portal-pytest-")
        # pytest-xdist's workers inherit it, and use <it>/popen-gwN.
        os.environ["PORTAL_TEST_BASETEMP"] = config.option.basetemp
        config._portal_basetemp = config.option.basetemp  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = getattr(config, "_portal_basetemp", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    # The run's own var/ (portal/test_settings.py makes it) and its hosted folders: the host-wide
    # claims of its dynamic uids (portal/process/accounts.py) lapse with it.
    if paths.VAR_DIR.name.startswith("portal-test-"):
        shutil.rmtree(paths.HOSTED_DIR, ignore_errors=True)
        shutil.rmtree(paths.VAR_DIR, ignore_errors=True)


@pytest.fixture
def tmp_path(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """pytest's tmp_path, readable by other users (0755; the folders above it up to the run's own
    base folder 0711), with files and folders the test makes readable to them (umask 022) for the
    time of the test: tests often use it as an application's own folder."""
    base = Path(os.environ.get("PORTAL_TEST_BASETEMP") or request.config.option.basetemp).resolve()
    folder = tmp_path.parent
    while folder == base or base in folder.parents:  # under pytest-xdist: <base>/popen-gwN/<test>
        folder.chmod(0o711)
        folder = folder.parent
    tmp_path.chmod(0o755)
    old = os.umask(0o022)
    try:
        yield tmp_path
    finally:
        os.umask(old)


# Users -------------------------------------------------------------------


@pytest.fixture
def make_user(django_user_model):  # type: ignore[no-untyped-def]
    def make(username: str, role: str | None) -> object:
        user = django_user_model.objects.create_user(username, password=PASSWORD)
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def viewer(make_user):  # type: ignore[no-untyped-def]
    return make_user("vera", VIEWER)


@pytest.fixture
def operator(make_user):  # type: ignore[no-untyped-def]
    return make_user("otto", OPERATOR)


@pytest.fixture
def administrator(make_user):  # type: ignore[no-untyped-def]
    return make_user("ada", ADMINISTRATOR)


@pytest.fixture
def role_client(request, make_user) -> Callable[[str], Client]:  # type: ignore[no-untyped-def]
    """A client logged in with the given role ("anonymous" is not logged in)."""

    def client_for(role: str) -> Client:
        client = Client()
        if role != "anonymous":
            group = {"viewer": VIEWER, "operator": OPERATOR, "administrator": ADMINISTRATOR}[role]
            user = make_user(f"user-{role}", group)
            client.force_login(user)
        return client

    return client_for


@pytest.fixture
def admin_client_(administrator) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(administrator)
    return client


# Redis and the Celery worker --------------------------------------------


@pytest.fixture(scope="session")
def redis_service() -> Iterator[Path]:
    """The suite's own embedded redis-server, on the socket the settings point at.

    Started as the launcher starts it: it requires the password of var/redis_password,
    which the settings (of this process and of every worker) read from the same file.
    """
    process = redis_server.start(paths.REDIS_DIR, password=paths.redis_password(),
                                 log_file=paths.VAR_DIR / "redis.log")
    yield paths.REDIS_SOCKET
    process.terminate()
    process.wait(10)


def worker_database_url() -> str:
    """The URL of the test database (not the development one), for other processes to open."""
    database = settings.DATABASES["default"]
    name = database["TEST"]["NAME"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{name}"
    # The configured server, user and options; only the database differs.
    return urlsplit(os.environ["PORTAL_DATABASE_URL"])._replace(path="/" + quote(name)).geturl()


def worker_env(host_name: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.test_settings",
            "PORTAL_VAR_DIR": str(paths.VAR_DIR),
            "PORTAL_DATABASE_URL": worker_database_url(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if host_name:
        env["PORTAL_HOST_NAME"] = host_name
    return env


def start_worker(host_name: str, log_path: Path, extra_env: dict[str, str] | None = None,
                 queues: list[str] | None = None, node: str = "test") -> subprocess.Popen:
    from portal.queues import worker_queues

    celery = str(Path(sys.executable).parent / "celery")
    log = open(log_path, "ab")
    return subprocess.Popen(
        [
            celery, "-A", "portal.celery", "worker",
            "--hostname", f"{node}@{host_name}",
            "--queues", ",".join(queues or worker_queues(host_name)),
            "--concurrency", "2", "--loglevel", "INFO", "--without-mingle", "--without-gossip",
        ],
        env={**worker_env(host_name), **(extra_env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def celery_worker(redis_service, django_db_setup, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A real Celery worker for this machine's host name, serving the test database."""
    from portal.celery import app
    from portal.queues import build_queue

    host = paths.this_host()
    process = start_worker(host, paths.VAR_DIR / "worker.log")
    # The launcher's second worker: virtualenv builds, beside the start slots.
    builder = start_worker(host, paths.VAR_DIR / "build-worker.log", queues=[build_queue(host)], node="build")
    node, build_node = f"test@{host}", f"build@{host}"

    def answers() -> bool:
        if process.poll() is not None or builder.poll() is not None:
            raise AssertionError(f"a worker exited: see {paths.VAR_DIR / 'worker.log'} and build-worker.log")
        pong = app.control.inspect(destination=[node, build_node], timeout=0.5).ping() or {}
        return node in pong and build_node in pong

    wait_until(answers, timeout=60, interval=0.2, message="the Celery workers did not answer")
    yield node
    stop_worker(builder)
    stop_worker(process)


def worker_idle(node: str) -> bool:
    """True when no task for the worker ``node`` (``test@HOST``) waits or runs: its queues in the
    broker are empty and the worker holds none (running, prefetched or held for an ETA)."""
    from portal.celery import app
    from portal.health import redis_client
    from portal.queues import worker_queues

    host = node.split("@", 1)[1]
    # kombu's Redis transport keeps a queue as a list of that name; a message the worker has taken
    # is in its reserved() or active() answer until it is done.
    if any(redis_client(2.0).llen(queue) for queue in worker_queues(host)):
        return False
    inspect = app.control.inspect(destination=[node], timeout=1.0)
    for answer in (inspect.active(), inspect.reserved(), inspect.scheduled()):
        if not answer or node not in answer or answer[node]:  # no answer is no proof of idleness
            return False
    return True


def wait_worker_idle(node: str, timeout: float = 60.0) -> None:
    """Wait until every task sent so far has been run by the worker ``node``: idle twice in a row,
    since a message leaves the broker's list a moment before the worker lists it as reserved."""
    seen: list[bool] = []

    def twice() -> bool:
        seen.append(worker_idle(node))
        return seen[-2:] == [True, True]

    wait_until(twice, timeout=timeout, interval=0.1, message=f"the worker {node} still had tasks after {timeout} s")


# What pip cannot install: nginx and Chromium ---------------------------------------


def _found_or_skip(found: str | None, missing: str, variable: str, where: str, package: str) -> str:
    """``found``; else the test is skipped, saying why: the variable that named nothing, or where
    it was looked for and the command that installs it."""
    if found:
        return found
    if wanted := os.environ.get(variable, "").strip():
        pytest.skip(f"{missing}: {variable}={wanted!r} names no executable (unset it to use an installed one)")
    pytest.skip(f"{missing} {where}: `sudo apt-get install -y {package}` installs it (.ci/run does)")


def require_nginx() -> str:
    """The nginx binary, found as the portal finds it; else the test is skipped, saying why."""
    return _found_or_skip(paths.find_nginx(), NO_NGINX, "PORTAL_NGINX", f"on the PATH nor at {paths.NGINX}", "nginx")


def find_chromium() -> str | None:
    """PORTAL_TEST_CHROMIUM when set (a path or a name on the PATH; one that names nothing: none),
    else /usr/bin/chromium, else chromium on the PATH."""
    if wanted := os.environ.get("PORTAL_TEST_CHROMIUM", "").strip():
        return shutil.which(wanted)
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


def require_chromium() -> str:
    return _found_or_skip(find_chromium(), NO_CHROMIUM, "PORTAL_TEST_CHROMIUM", f"at {CHROMIUM} nor on the PATH",
                          "chromium")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture: a browser test without Chromium must not start a Celery worker first.
    if item.get_closest_marker("needs_nginx"):
        require_nginx()
    if item.get_closest_marker("browser"):
        require_chromium()


@pytest.fixture(scope="session")
def nginx() -> str:
    """The nginx binary, for a test that runs it itself (skipped without one, saying why)."""
    return require_nginx()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    """Say how many tests were skipped for want of nginx, Chromium or PostgreSQL, and how to install them."""
    missing: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        reason = reason.removeprefix("Skipped: ")
        for program, prefix in (("nginx", NO_NGINX), ("chromium", NO_CHROMIUM), ("postgresql", NO_POSTGRES)):
            if reason.startswith(prefix):
                missing[program] = missing.get(program, 0) + 1
    if not missing:
        return
    missing = {p: missing[p] for p in PROGRAMS if p in missing}
    counts = ", ".join(f"{n} for a missing {PROGRAMS[p]}" for p, n in missing.items())
    terminalreporter.write_sep("=", "tests skipped for a program pip cannot install", yellow=True)
    total = sum(missing.values())
    terminalreporter.write_line(f"{total} test{'s' if total > 1 else ''} skipped: {counts}.")
    them = "them" if len(missing) > 1 else "it"
    terminalreporter.write_line(f"`sudo apt-get install -y {' '.join(missing)}` installs {them} (.ci/run does).")
    told = [name for name in ("PORTAL_NGINX", "PORTAL_TEST_CHROMIUM", "PORTAL_TEST_POSTGRES")
            if os.environ.get(name, "").strip()]
    if told:
        terminalreporter.write_line(f"({' and '.join(told)} set: unset to use what is installed)")


# The browser ---------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, which
    # makes Django refuse ORM calls from the test; they are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def gateway_processes(celery_worker, transactional_db):  # type: ignore[no-untyped-def]
    """A real worker, and every gateway process a test starts stopped at its end."""
    from gateways.tests.process_helpers import stop_every_keeper

    yield celery_worker
    stop_every_keeper()


# The order of the files under pytest-xdist ------------------------------------------------------
# `make test` hands out whole files to its workers (--dist loadfile), by default the files with the
# most tests first: a file of a few slow tests (the launcher's, the browsers') could then start last
# and hold one worker for minutes after the others are done. They are handed out longest first
# instead (the seconds each took in a whole run, from `--durations=0`; refresh them when a file
# grows much slower), then the files not listed, most tests first, as before. The fuzz file, long
# and made of independent tests, is handed out test by test at the very end, to fill the gaps.
FILE_SECONDS = {
    "portal/tests/test_launcher.py": 100, "portal/tests/test_browser_layout.py": 119,
    "portal/tests/test_multihost.py": 90,
    "portal/tests/test_setup.py": 25, "webapps/tests/test_front.py": 48, "portal/tests/test_browser_csp.py": 43,
    "webapps/tests/test_runtime_reload.py": 40, "gateways/tests/test_nonblocking_start.py": 40,
    "gateways/tests/test_server_abuse.py": 35, "webapps/tests/test_webapp_start_stop.py": 35,
    "portal/tests/test_security_files.py": 34, "gateways/tests/test_reconcile.py": 32,
    "portal/tests/test_browser_wide_forms.py": 29, "gateways/tests/test_install_button.py": 29,
    "gateways/tests/test_browser_start_stop.py": 26, "processes/tests/test_data_migration.py": 24,
    "webapps/tests/test_routing.py": 24, "portal/tests/test_migrations.py": 23,
    "gateways/tests/test_start_failures.py": 22, "webapps/tests/test_examples.py": 22,
    "gateways/tests/test_start_stop.py": 20, "webapps/tests/test_webapp_browser.py": 19,
    "webapps/tests/test_webapp_form.py": 19, "gateways/tests/test_last_request_wins.py": 18,
    "portal/tests/test_redis_auth.py": 16, "webapps/tests/test_security_socket.py": 16,
    "gateways/tests/test_cpf_concurrent.py": 16, "gateways/tests/test_browser_live_log.py": 13,
    "webapps/tests/test_figures.py": 13, "processes/tests/test_security_hosted_users.py": 12,
    "webapps/tests/test_runtime_appcheck.py": 11, "gateways/tests/test_control_views.py": 11,
    "portal/process/tests/test_keeper_restart.py": 11, "webapps/tests/test_folder_requirements.py": 10,
    "gateways/tests/test_server_cli.py": 10, "gateways/tests/test_command_gateway_control.py": 10,
    "gateways/tests/test_browser_definitions.py": 10, "webapps/tests/test_runtime_serving.py": 9,
    "gateways/tests/test_gateway_environment.py": 9, "gateways/tests/test_api.py": 9,
    "webapps/tests/test_sandbox.py": 9, "webapps/tests/test_security_front.py": 8,
    "portal/process/tests/test_security_logs.py": 8, "programs/tests/test_program_runs.py": 30,
    "processes/tests/test_echo_kind.py": 12, "programs/tests/test_program_form.py": 8,
    "portal/process/tests/test_keeper_idle.py": 15,
}
HANDED_OUT_TEST_BY_TEST = {"portal/tests/test_no_server_error.py"}


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In each xdist worker (they must all collect the same order): the slow files first."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: the files in their usual order
    counts: dict[str, int] = {}
    for item in items:
        counts[_file_of(item.nodeid)] = counts.get(_file_of(item.nodeid), 0) + 1

    def weight(item: pytest.Item) -> tuple[float, int]:
        file = _file_of(item.nodeid)
        if file in HANDED_OUT_TEST_BY_TEST:
            return (-1, 0)
        return (FILE_SECONDS.get(file, 0), counts[file])

    items[:] = sorted(items, key=weight, reverse=True)  # stable: each file keeps its own order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    """xdist's file scheduler, keeping the workers' order, with the fuzz file's tests one unit each."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongestFirst(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if _file_of(nodeid) in HANDED_OUT_TEST_BY_TEST else super()._split_scope(nodeid)

    config.option.loadscopereorder = False  # the order the workers collected, longest first
    return LongestFirst(config, log)
