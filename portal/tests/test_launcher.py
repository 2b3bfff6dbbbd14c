"""`make run`'s launcher with real processes: it serves, supervises its parts, and leaves nothing behind."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis
from django.conf import settings

from conftest import wait_until, worker_database_url
from webapps.front.routes import write_routes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_answer(url: str, accept: str = "application/json") -> tuple[int | None, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def http_status(url: str) -> int | None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    try:
        return urllib.request.build_opener(NoRedirect).open(url, timeout=2).status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


@pytest.fixture
def portal_env(tmp_path: Path, django_db_setup) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {
        k: v for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "PORTAL_DATABASE_URL"}
    }
    env.update({
        "PORTAL_VAR_DIR": str(tmp_path / "var"), "PORTAL_PORT": str(free_port()),
        "PORTAL_APPS_PORT": str(free_port()),
        "PORTAL_ADMIN_PASSWORD": "launcher-test-password", "PORTAL_WORKER_CONCURRENCY": "1",
        "PORTAL_WEB_WORKERS": "1",
    })
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        # Like `make run` with PORTAL_DATABASE_URL set: the launcher opens the configured server
        # (here the suite's test database). On SQLite it keeps its own file in its own var/, as
        # `make run` does; the suite's SQLite file is not for a second portal to share.
        env["PORTAL_DATABASE_URL"] = worker_database_url()
    return env


class Running:
    """A launcher started as `make run` would be, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = env["PORTAL_PORT"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portal.launcher"], env=env, cwd=settings.BASE_DIR,
            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_serving(self) -> None:
        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the launcher exited early:\n{self.output()[-3000:]}")
            return http_status(f"http://127.0.0.1:{self.port}/login/") == 200

        wait_until(up, timeout=120, interval=0.3, message="the login page did not answer")

    def part(self, word: str) -> psutil.Process | None:
        for child in psutil.Process(self.process.pid).children():
            try:
                if word in " ".join(child.cmdline()):
                    return child
            except psutil.Error:
                pass
        return None

    def sessions(self) -> set[int]:
        return {os.getsid(c.pid) for c in psutil.Process(self.process.pid).children()}

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # what a terminal does to its foreground group
        return self.process.wait(60)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def alive_in(sessions: set[int]) -> list[str]:
    """Processes (not zombies) still in any of these sessions."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if os.getsid(process.pid) in sessions and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(f"{process.pid}: {' '.join(process.info['cmdline'] or [])[:100]}")
        except (OSError, psutil.Error):
            pass
    return found


def test_it_serves_refuses_a_second_launcher_and_ctrl_c_leaves_no_process_behind(portal_env, tmp_path, nginx):
    var = Path(portal_env["PORTAL_VAR_DIR"])
    # A beat left behind by an earlier run from this folder must not make a second scheduler.
    stale_beat = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "--schedule", str(var / "celerybeat-schedule")],
        start_new_session=True,
    )
    # And an nginx left behind on the apps port, with its files in this folder's var/front/nginx.
    prefix = var / "front" / "nginx"
    prefix.mkdir(parents=True)
    (prefix / "old.conf").write_text(
        f"pid {prefix}/nginx.pid; error_log {prefix}/error.log; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {prefix}/body; "
        f"server {{ listen 127.0.0.1:{portal_env['PORTAL_APPS_PORT']}; return 418; }} }}\n"
    )
    stale_nginx = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "old.conf"),
                                    "-g", "daemon off;"], start_new_session=True)
    wait_until(lambda: http_status(f"http://127.0.0.1:{portal_env['PORTAL_APPS_PORT']}/") == 418, timeout=10)
    stale_workers = psutil.Process(stale_nginx.pid).children()
    launcher = Running(dict(portal_env, PORTAL_SECRET_KEY="launcher-test-" + "k" * 40), tmp_path / "launcher.log")
    try:
        launcher.wait_serving()
        assert stale_beat.wait(5) == -signal.SIGKILL
        assert stale_nginx.wait(5) == -signal.SIGKILL
        assert not [w for w in stale_workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
        assert f"pid {stale_beat.pid}, left running by an earlier run" in launcher.output()
        assert http_status(f"http://127.0.0.1:{launcher.port}/") == 302
        tree = psutil.Process(launcher.process.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "redis-server" in names and "gunicorn" in names
        assert "portal.celery worker" in names and "portal.celery beat" in names
        assert "--queues build." in names  # the virtualenv builds' own worker
        # The front on the apps port: nginx here (it is installed), with its files under var/.
        assert "webapps.front.nginx" in names and "nginx: master process" in names
        assert f"web applications are served at http://127.0.0.1:{portal_env['PORTAL_APPS_PORT']}/ " \
               "by the nginx front" in launcher.output()
        # Who hosted code runs as, said once: users of their own as root, else the portal's and why.
        from portal.launcher import hosted_users_line

        assert f"[portal] {hosted_users_line()}" in launcher.output()
        assert (var / "front" / "nginx" / "nginx.pid").exists()
        apps = f"http://127.0.0.1:{portal_env['PORTAL_APPS_PORT']}"
        status, body = http_answer(f"{apps}/nothing-here/")
        assert status == 404 and json.loads(body)["error"] == "no application is mounted at this path"
        # A routes change reaches the running front (nginx is reloaded) within a second or so.
        write_routes(var / "front" / "routes.json",
                     [{"path": "/later", "socket": str(var / "x.sock"), "state": "stopped", "reason": "r1"}],
                     ["portal_sessionid", "portal_csrftoken"])
        wait_until(lambda: http_answer(f"{apps}/later/")[0] == 503, timeout=5, interval=0.05,
                   message="the front did not follow the routes file")
        sessions = launcher.sessions()
        assert (var / "redis" / "redis.sock").exists()
        assert_the_redis_password_is_kept_out_of_sight(var, launcher)
        # Each part gets only the secrets it needs: the admin password none, the secret key
        # and the database URL the Django processes only, never Redis nor the front.
        for process in psutil.Process(launcher.process.pid).children():
            environ = process.environ()
            assert "PORTAL_ADMIN_PASSWORD" not in environ, process.cmdline()
            command = " ".join(process.cmdline())
            django_part = "redis-server" not in command and "webapps.front" not in command
            assert ("PORTAL_SECRET_KEY" in environ) == django_part, process.cmdline()
        assert_gunicorn_has_no_control_socket(var, launcher)

        # A second `make run` on the same folder says so and starts nothing.
        second_env = dict(portal_env, PORTAL_PORT=str(free_port()))
        second = subprocess.run(
            [sys.executable, "-m", "portal.launcher"], env=second_env, cwd=settings.BASE_DIR,
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert second.returncode == 1
        assert f"the portal is already running from {var} (pid {launcher.process.pid}, serving " \
               f"http://127.0.0.1:{launcher.port}/)" in second.stdout
        assert "starting" not in second.stdout
        assert http_status(f"http://127.0.0.1:{second_env['PORTAL_PORT']}/login/") is None
        assert launcher.sessions() == sessions  # the same parts, none restarted

        # Celery warns of a worker run as root once, not once per worker (the build worker is quiet).
        wait_until(lambda: "portal@" in launcher.output() and "build@" in launcher.output()
                   and launcher.output().count(" ready.") >= 2, timeout=60, message="the workers are not ready")
        assert launcher.output().count("superuser privileges") == (1 if os.geteuid() == 0 else 0)

        assert launcher.ctrl_c() == 0
        output = launcher.output()
        for part in ("front (nginx)", "web server", "celery beat", "celery worker", "redis"):
            assert f"stopping {part}" in output
        # Nothing was started from this portal: nothing is said to keep running.
        assert output.rstrip().splitlines()[-1] == "[portal] stopped"
        assert [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        assert alive_in(sessions) == []
        assert http_status(f"{apps}/later/") is None
    finally:
        launcher.kill()
        stale_beat.kill()
        stale_nginx.kill()


def assert_gunicorn_has_no_control_socket(var: Path, launcher: Running) -> None:
    """gunicorn's control socket (`show config`, `worker kill`, `shutdown quick` for whoever can
    connect to it: the sandbox does not check a unix socket's connect) is off: its command line says
    so, and no gunicorn process of the portal listens on any unix socket, here or in ~/.gunicorn."""
    gunicorns = [p for p in psutil.Process(launcher.process.pid).children(recursive=True)
                 if "gunicorn" in " ".join(p.cmdline())]
    assert gunicorns
    arbiter = launcher.part("gunicorn")
    assert arbiter is not None and "--no-control-socket" in arbiter.cmdline()
    assert "--control-socket" not in arbiter.cmdline()
    for process in gunicorns:
        assert [c.laddr for c in process.net_connections(kind="unix") if c.laddr] == [], process.cmdline()
    assert not (var / "run" / "gunicorn.ctl").exists()
    assert [path for path in var.rglob("*.ctl")] == []


def assert_the_redis_password_is_kept_out_of_sight(var: Path, launcher: Running) -> None:
    """The embedded Redis refuses a client without its password, which no command line, environment,
    log or output of the running portal holds."""
    password_file = var / "redis_password"
    password = password_file.read_text()
    assert len(password) >= 40 and stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((var / "redis" / "redis.conf").stat().st_mode) == 0o600
    sock = str(var / "redis" / "redis.sock")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=sock).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=sock, password="not-" + password).ping()
    assert redis.Redis(unix_socket_path=sock, password=password).ping()
    # Every process of the machine (anyone can read a command line), and everything the launcher
    # started: redis-server, the workers and their pool processes, beat, gunicorn, the front, nginx.
    for process in psutil.process_iter(["cmdline"]):
        assert password not in "\0".join(process.info["cmdline"] or []), process.info["cmdline"]
    tree = psutil.Process(launcher.process.pid).children(recursive=True)
    assert "redis-server" in " ".join(" ".join(p.cmdline()) for p in tree)
    for process in tree:
        assert password not in "\0".join(f"{k}={v}" for k, v in process.environ().items()), process.cmdline()
    logs = [path for path in (var / "log").rglob("*") if path.is_file()]
    assert var / "log" / "redis.log" in logs
    for path in logs:
        assert password not in path.read_text(errors="replace"), path
    # The workers and beat print the broker's URL as they start: masked.
    wait_until(lambda: "redis+socket://:**@" in launcher.output(), timeout=30)
    assert password not in launcher.output()


def schedulers(schedule: str) -> list[int]:
    """Every process whose command line names this folder's beat schedule."""
    return [p.pid for p in psutil.process_iter(["cmdline", "status"])
            if schedule in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]


def test_a_killed_part_is_restarted_alone_and_a_crash_loop_stops_everything(portal_env, tmp_path):
    from celery import Celery

    launcher = Running(portal_env, tmp_path / "launcher.log")
    var = Path(portal_env["PORTAL_VAR_DIR"])
    schedule = str(var / "celerybeat-schedule")
    try:
        launcher.wait_serving()
        sessions = launcher.sessions()
        # The worker of starts and stops, not the build worker (--hostname build@...).
        for word, name in (("worker --hostname portal@", "celery worker"), ("portal.celery beat", "celery beat"),
                           ("redis-server", "redis")):
            old = wait_until(lambda w=word: launcher.part(w), timeout=30)
            if name == "celery worker":  # its pool processes, which must not outlive it
                wait_until(old.children, timeout=30)
            old_session = os.getsid(old.pid)
            others = {p.pid for p in psutil.Process(launcher.process.pid).children()} - {old.pid}

            old.kill()

            new = wait_until(lambda w=word, o=old: (p := launcher.part(w)) and p.pid != o.pid and p,
                             timeout=30, message=f"{name} was not restarted:\n{launcher.output()[-2000:]}")
            sessions.add(os.getsid(new.pid))
            wait_until(lambda s=old_session: not alive_in({s}), timeout=10,
                       message=f"the dead {name}'s processes survived: {alive_in({old_session})}")
            # The other parts were left alone.
            assert {p.pid for p in psutil.Process(launcher.process.pid).children()} == others | {new.pid}
            assert f"{name} (pid {old.pid}) was killed by SIGKILL" in launcher.output()
            assert f"restarting {name}" in launcher.output()
            # One scheduler, always: the beat part's.
            beat = launcher.part("portal.celery beat")
            wait_until(lambda b=beat: schedulers(schedule) == [b.pid], timeout=10,
                       message=f"schedulers: {schedulers(schedule)}, beat part: {beat.pid}")

        # The restarted worker serves again through the restarted Redis.
        password = (var / "redis_password").read_text()
        app = Celery(broker=f"redis+socket://:{password}@{var / 'redis' / 'redis.sock'}", set_as_current=False)
        wait_until(lambda: app.control.ping(timeout=1), timeout=60, interval=0.5,
                   message=f"the restarted worker does not answer:\n{launcher.output()[-2000:]}")
        assert http_status(f"http://127.0.0.1:{launcher.port}/login/") == 200

        # Redis now crashes each time it is started: after six crashes in a row (the first
        # one above) the launcher gives up and stops everything, rather than half a portal.
        killed: set[int] = set()

        def kill_each_new_redis() -> bool:
            if launcher.process.poll() is not None:
                return True
            redis = launcher.part("redis-server")
            if redis and redis.pid not in killed:
                sessions.add(os.getsid(redis.pid))
                killed.add(redis.pid)
                redis.kill()
            return False

        wait_until(kill_each_new_redis, timeout=90, interval=0.05,
                   message=f"the launcher did not give up:\n{launcher.output()[-3000:]}")
        assert launcher.process.returncode == 1
        output = launcher.output()
        assert len(killed) >= 5  # six with the kill above, unless Redis ran 60 s since (count reset)
        assert "redis crashed 6 times in a row; giving up: stopping the portal" in output
        for part in ("web server", "celery beat", "celery worker"):
            assert f"stopping {part}" in output
        assert alive_in(sessions) == []
        # The workers lost their broker six times and said so, never with its password.
        assert password not in output
    finally:
        launcher.kill()


@pytest.mark.parametrize(("variable", "what"), [
    ("PORTAL_PORT", "the web server"), ("PORTAL_APPS_PORT", "the applications' front"),
])
def test_a_port_held_by_another_program_is_refused_before_anything_starts(portal_env, variable, what):
    with socket.socket() as holder, socket.socket() as next_one:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        try:  # the next port is taken too: the advice must not suggest it
            next_one.bind(("127.0.0.1", port + 1))
            next_one.listen()
        except OSError:
            pass  # taken already
        out = subprocess.run(
            [sys.executable, "-m", "portal.launcher"], env=dict(portal_env, **{variable: str(port)}),
            cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60, check=False,
        )
        assert out.returncode == 1
        assert (f"{what} cannot listen on 127.0.0.1:{port} (Address already in use): pid {os.getpid()} "
                f"({psutil.Process().name()}) holds it") in out.stdout
        suggested = re.search(rf"{variable}=(\d+) make run", out.stdout)
        assert suggested is not None, out.stdout
        free = int(suggested.group(1))
        assert free not in (port, port + 1)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", free))  # it was free
    assert "starting" not in out.stdout and "Traceback" not in out.stderr
    assert not (Path(portal_env["PORTAL_VAR_DIR"]) / "redis" / "redis.sock").exists()


def test_a_second_redis_on_the_same_folder_is_refused(portal_env):
    from portal import redis_server

    redis_dir = Path(portal_env["PORTAL_VAR_DIR"]) / "redis"
    first = redis_server.start(redis_dir, password="first-" + "p" * 20)
    try:
        # It answers PING with NOAUTH only, which still says that a Redis serves the socket.
        with pytest.raises(RuntimeError, match="another portal seems to be running"):
            redis_server.start(redis_dir, password="second-" + "p" * 20)
    finally:
        first.terminate()
        first.wait(10)


@pytest.mark.parametrize(("env", "message"), [
    ({"PORTAL_FRONT": "apache"}, "PORTAL_FRONT='apache' is not a front: use nginx, asyncio or auto"),
    ({"PORTAL_APPS_PORT": "same"}, "PORTAL_APPS_PORT and PORTAL_PORT are both"),
    ({"PORTAL_FRONT": "nginx", "PORTAL_VAR_DIR": "a space"}, "PORTAL_FRONT=nginx but nginx cannot use the folder"),
    ({"PORTAL_FRONT": "nginx", "PORTAL_NGINX": "/nonexistent/nginx"},
     "PORTAL_FRONT=nginx but PORTAL_NGINX='/nonexistent/nginx' is not an executable"),
])
def test_a_bad_front_setting_is_refused_saying_how_to_fix_it(portal_env, env, message, tmp_path):
    if env.get("PORTAL_APPS_PORT") == "same":
        env = {"PORTAL_APPS_PORT": portal_env["PORTAL_PORT"]}
    if env.get("PORTAL_VAR_DIR"):
        # The folder is refused before nginx would run, so any executable stands in for it: the
        # refusal is the same on a machine without nginx.
        stand_in = tmp_path / "nginx"
        stand_in.write_text("#!/bin/sh\nexit 1\n")
        stand_in.chmod(0o700)
        env = dict(env, PORTAL_VAR_DIR=str(tmp_path / "my var"), PORTAL_NGINX=str(stand_in))
    out = subprocess.run(
        [sys.executable, "-m", "portal.launcher"], env=dict(portal_env, **env),
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 1
    assert message in out.stdout
    assert "starting" not in out.stdout and "Traceback" not in out.stderr


def test_portal_nginx_chooses_the_nginx_binary_and_one_that_names_none_means_no_nginx(tmp_path):
    from portal.launcher import front_kind

    stand_in = tmp_path / "my-nginx"
    stand_in.write_text("#!/bin/sh\nexit 1\n")
    stand_in.chmod(0o700)
    path = os.environ.get("PATH", "")
    # Told which nginx: that one, by path or by name on the PATH, and the runner finds the same.
    assert front_kind({"PATH": path, "PORTAL_NGINX": str(stand_in)}) == ("nginx", str(stand_in))
    assert front_kind({"PATH": f"{tmp_path}:{path}", "PORTAL_NGINX": "my-nginx"}) == ("nginx", str(stand_in))
    found = subprocess.run([sys.executable, "-c", "from webapps.front.nginx import find_nginx; print(find_nginx())"],
                           env=dict(os.environ, PORTAL_NGINX=str(stand_in)), cwd=settings.BASE_DIR,
                           capture_output=True, text=True, timeout=30, check=True)
    assert found.stdout.strip() == str(stand_in)
    # Told a name that is no executable: no nginx, whatever is installed; the asyncio front serves.
    for none in ("none", "/nonexistent/nginx", str(tmp_path)):
        assert front_kind({"PATH": path, "PORTAL_NGINX": none}) == ("asyncio", None)
    # PORTAL_FRONT=asyncio needs no nginx and looks for none.
    assert front_kind({"PATH": path, "PORTAL_NGINX": str(stand_in), "PORTAL_FRONT": "asyncio"}) == ("asyncio", None)


def test_an_earlier_runs_leftovers_are_stopped_upgraded_or_counted_and_without_nginx_asyncio_serves(
        portal_env, tmp_path):
    """One start of the launcher (each takes seconds) over what an earlier run left in its var/: its
    front holding the apps port (stopped), its redis-server from before the Redis password with its
    data (stopped; the data served again behind a password), keepers still running (counted, and
    left running at the end). Told that there is no nginx, it serves with the asyncio front."""
    # That the password file is kept and used again: portal/tests/test_redis_auth.py, and the restart
    # of a killed Redis with it: test_a_killed_part_is_restarted_alone_and_a_crash_loop_stops_everything.
    from celery import Celery

    from portal import redis_server
    from portal.tests.test_launcher_stop import keeper_dir

    var = Path(portal_env["PORTAL_VAR_DIR"])
    apps = f"http://127.0.0.1:{portal_env['PORTAL_APPS_PORT']}"
    redis_dir, sock = var / "redis", var / "redis" / "redis.sock"
    redis_dir.mkdir(parents=True)
    (var / "front").mkdir(parents=True)
    # The redis-server an earlier portal started, as it started it (no password), with the data of
    # that run; its front, holding the apps port; keepers of two gateways and an application.
    old = subprocess.Popen(
        [redis_server.find_redis_server(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--dir", str(redis_dir), "--dbfilename", "dump.rdb", "--appendonly", "yes", "--daemonize", "no",
         "--logfile", str(var / "old-redis.log")], start_new_session=True,
    )
    stale = subprocess.Popen(
        [sys.executable, "-m", "webapps.front", "--listen", f"127.0.0.1:{portal_env['PORTAL_APPS_PORT']}",
         "--routes", str(var / "front" / "routes.json")], cwd=settings.BASE_DIR, start_new_session=True,
    )
    keepers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
               for _ in range(3)]
    launcher = None
    try:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        for folder, process in (("gateways", keepers[0]), ("gateways", keepers[1]), ("webapps", keepers[2]),
                                ("webapps", gone)):
            keeper_dir(var / "run", folder, process.pid)
        wait_until(lambda: redis_server.listening(sock), timeout=15)
        redis.Redis(unix_socket_path=str(sock)).set("from-before", "kept")
        assert not (var / "redis_password").exists()
        wait_until(lambda: http_status(f"{apps}/x") == 404, timeout=15, message="the stale front did not start")

        # The portal told that there is no nginx (PORTAL_NGINX names none), as on a machine without it.
        launcher = Running(dict(portal_env, PORTAL_NGINX="none"), tmp_path / "launcher.log")
        launcher.wait_serving()
        # The earlier run's Redis and front: stopped as leftovers.
        assert old.wait(10) == -signal.SIGKILL
        assert stale.wait(5) == -signal.SIGKILL
        # Its keepers: counted (the one whose process is gone is not), and not the launcher's.
        wait_until(lambda: "still running" in launcher.output(), timeout=10)
        assert "[portal] 2 gateways and 1 web application started from the portal before are still running: the " \
               "portal takes them back as they are" in launcher.output()
        # Its Redis data, behind the password now made.
        password = (var / "redis_password").read_text()
        assert stat.S_IMODE((var / "redis_password").stat().st_mode) == 0o600
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(unix_socket_path=str(sock)).ping()
        assert redis.Redis(unix_socket_path=str(sock), password=password).get("from-before") == b"kept"
        app = Celery(broker=f"redis+socket://:{password}@{sock}", set_as_current=False)
        wait_until(lambda: app.control.ping(timeout=1), timeout=60, interval=0.5,
                   message=f"the worker does not answer:\n{launcher.output()[-2000:]}")

        # The asyncio front.
        front = launcher.part("webapps.front --listen")
        assert front is not None and "webapps.front.nginx" not in " ".join(front.cmdline())
        assert f"served at {apps}/ by the asyncio front" in launcher.output()
        # The front needs no secret.
        assert not {"PORTAL_SECRET_KEY", "PORTAL_ADMIN_PASSWORD"} & set(front.environ())
        # The launcher wrote the routes file from the (empty) definitions before the front started.
        assert json.loads((var / "front" / "routes.json").read_text())["apps"] == []
        assert http_answer(f"{apps}/flask/")[0] == 404
        # A killed front is restarted like every part.
        front.kill()
        wait_until(lambda: (p := launcher.part("webapps.front --listen")) and p.pid != front.pid, timeout=20,
                   message=f"the front was not restarted:\n{launcher.output()[-2000:]}")
        wait_until(lambda: http_answer(f"{apps}/flask/")[0] == 404, timeout=10, message="the front is not back")

        sessions = launcher.sessions()
        assert launcher.ctrl_c() == 0
        assert "stopping front (asyncio)" in launcher.output()
        assert alive_in(sessions) == []
        assert http_status(f"{apps}/flask/") is None
        assert launcher.output().rstrip().splitlines()[-1] == (
            "[portal] stopped; 2 gateways and 1 web application started from the portal keep running: stop them in "
            "the portal; the web applications answer again when the portal and its front are back")
        assert all(process.poll() is None for process in keepers)
    finally:
        if launcher:
            launcher.kill()
        for process in [old, stale, *keepers]:
            process.kill()
            process.wait()
