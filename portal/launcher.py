"""``make run``: set up, start everything the portal needs and keep it in the foreground.

The launcher first takes a lock in var/ (a second ``make run`` on the same folder
says so and exits), applies the migrations, creates the first administrator and
collects the static files. Then it starts its parts: an embedded Redis (unless
REDIS_URL is set; it requires the password kept in var/redis_password), a
Celery worker, Celery beat, the web application under gunicorn, and the front
that serves the web applications on PORTAL_APPS_PORT (nginx when it is
installed, else the asyncio front: webapps/front/). Before that it writes the
routes file the front follows (``manage.py webapp_routes``); from then on the
portal rewrites it on every change and the front follows it
within a second (nginx is reloaded gracefully).

It supervises them: a part that dies is stopped whole (every process of its
session, e.g. the pool processes of a worker killed with SIGKILL) and
restarted after a growing delay; after too many crashes in a row the launcher
gives up, stops the rest and says so, rather than leave a half-running portal.
Ctrl-C or SIGTERM stops the parts with SIGTERM and then SIGKILL after a grace period,
and leaves no process of theirs behind: every part but Redis at once (none waits for
another: stopped one after the other they took the sum of their times, ~7 s), then
Redis, which the workers need until they are gone. Gateways and web applications
started from the portal are not the launcher's: their keepers are detached on purpose
(own session) and keep running; the next start re-adopts them. The closing message
counts those whose keeper is alive now, and the next start's message those it found.

Written by hand rather than with a Procfile runner or supervisord because the
start order matters (Redis must answer before the worker starts), the children
must die with the launcher even when it is killed (PR_SET_PDEATHSIG), whole
sessions must be stopped (not only the process a runner started), and no extra
dependency or configuration file is needed for ~300 lines.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from portal import paths, redis_server
from portal.process import rundir

GRACE_SECONDS = 10
PR_SET_PDEATHSIG = 1
# A part that dies is restarted after these delays, one per crash in a row; one
# more crash and the launcher gives up. A part that ran STABLE_SECONDS has its
# count reset, so a crash a day never adds up to giving up.
RESTART_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
STABLE_SECONDS = 60
LOCK_FILE = paths.VAR_DIR / "launcher.lock"
SCHEDULE_FILE = paths.VAR_DIR / "celerybeat-schedule"
ACCESS_LOG = paths.LOG_DIR / "access.log"
# Secrets the launcher may be given, and who needs them: the first administrator's
# password only `manage.py ensure_admin`; the secret key and the database URL (it may
# hold a password) the Django processes, never Redis.
ADMIN_PASSWORD = "PORTAL_ADMIN_PASSWORD"
DJANGO_SECRETS = ("PORTAL_SECRET_KEY", "PORTAL_DATABASE_URL")
# The folders of RUN_DIR that hold the keepers' run directories, and what the closing message
# calls one and several of them (the launcher imports no Django app: processes/adapters.py
# names the same folders).
KEPT_KINDS = {"gateways": ("gateway", "gateways"), "webapps": ("web application", "web applications"),
              "programs": ("program", "programs")}
# Celery's worker warns when it runs as root; the build worker would print the same warning
# again. Matched by the start of its message: a -W category would import celery at start-up.
# (C_FORCE_ROOT would not silence it: it only lets a root worker accept pickle, which the portal
# never does, and setting it would take that guard away.)
ROOT_WARNING_FILTER = "ignore:You're running the worker with superuser privileges"


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the launcher dies, however it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the signal handlers below still stop the children


def hosted_users_line() -> str:
    """Who hosted code will run as, said once at start (docs/security.md)."""
    from portal.process import accounts

    mode = os.environ.get("PORTAL_HOSTED_USERS", "auto").strip().lower() or "auto"
    own = "gateways and web applications run as the portal's own user"
    if mode == "off":
        return f"{own} (PORTAL_HOSTED_USERS=off)"
    if not accounts.can_switch():
        return (f"{own} ({accounts.portal_user()}): the portal is not root; the sandbox and a private mount "
                "namespace keep var/ from them")
    problem = accounts.installation_problem(str(paths.BASE_DIR))
    if problem:
        return f"warning: {own} (root): {problem}"
    uids = os.environ.get("PORTAL_HOSTED_UIDS", "").strip() or "40000-49999"
    return f"each gateway and web application runs as a user of its own (uids {uids}; root only where allowed)"


def _say(text: str) -> None:
    print(f"[portal] {text}", flush=True)


def _how(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _session_members(sid: int) -> list[int]:
    """Every process of the session ``sid``: a part and all it started, even orphans."""
    import psutil

    members = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid and pid != os.getpid():
                members.append(pid)
        except OSError:
            pass  # gone meanwhile
    return members


def _kill_session(sid: int) -> None:
    for pid in _session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def leftovers() -> list:  # type: ignore[type-arg]
    """Processes of an earlier run on this var/ folder (found by the paths in their command lines).

    Only possible when an earlier launcher could not stop them (e.g. it was killed
    on a system without PR_SET_PDEATHSIG): a second beat would double the schedule.
    """
    import psutil

    marks = {
        ("--schedule", str(SCHEDULE_FILE)),
        ("--access-logfile", str(ACCESS_LOG)),
        ("--unixsocket", str(paths.REDIS_SOCKET)),
        ("--routes", str(paths.ROUTES_FILE)),  # either front's runner
    }
    nginx_prefix = str(paths.NGINX_DIR)
    redis_title = f"unixsocket:{paths.REDIS_SOCKET}"  # redis-server rewrites its command line
    found = []
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info["cmdline"] or []
        if process.pid == os.getpid():
            continue
        if marks & set(itertools.pairwise(argv)) or any(a.endswith(redis_title) for a in argv[:1]):
            found.append(process)
        elif " ".join(argv[:2]).startswith("nginx: master") and ("-p", nginx_prefix) in itertools.pairwise(argv):
            # nginx rewrites its command line too; its workers go with their master.
            found += [process, *process.children()]
    return found


def trusted_proxies(env: dict[str, str]) -> list[str]:
    """PORTAL_APPS_TRUSTED_PROXIES: your own proxies in front of the apps port, whose
    X-Forwarded-For the front believes (webapps/front/forwarding.py); ValueError naming a bad one."""
    proxies = [value.strip() for value in env.get("PORTAL_APPS_TRUSTED_PROXIES", "").split(",") if value.strip()]
    for value in proxies:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"PORTAL_APPS_TRUSTED_PROXIES: {value!r} is not an IP address or network; give "
                             "your proxies' addresses, e.g. 127.0.0.1 or 10.0.0.0/8, separated by commas") from None
    return proxies


def front_kind(env: dict[str, str]) -> tuple[str, str | None]:
    """Which front serves the applications: ("nginx", its binary) when nginx is installed, else
    ("asyncio", None); PORTAL_FRONT=asyncio or nginx chooses (an unknown value raises ValueError)."""
    wanted = env.get("PORTAL_FRONT", "auto").strip().lower() or "auto"
    if wanted not in ("auto", "nginx", "asyncio"):
        raise ValueError(f"PORTAL_FRONT={wanted!r} is not a front: use nginx, asyncio or auto (nginx when installed)")
    # PORTAL_NGINX, else on PATH, else Debian's place: as the runner (webapps.front.nginx) looks.
    nginx = paths.find_nginx(env) if wanted != "asyncio" else None
    if wanted == "nginx" and nginx is None:
        if env.get("PORTAL_NGINX", "").strip():
            raise ValueError(f"PORTAL_FRONT=nginx but PORTAL_NGINX={env['PORTAL_NGINX'].strip()!r} is not an "
                             "executable: name nginx's binary there, unset it, or PORTAL_FRONT=asyncio")
        raise ValueError("PORTAL_FRONT=nginx but nginx is not installed: "
                         "apt-get install nginx, or PORTAL_FRONT=asyncio")
    if nginx and re.search(r"[\s\"'$;{}\\#]", str(paths.NGINX_DIR)):
        # nginx's config cannot name a folder with these characters (webapps.front.nginx._safe_path).
        if wanted == "nginx":
            raise ValueError(f"PORTAL_FRONT=nginx but nginx cannot use the folder {paths.NGINX_DIR} (it holds "
                             "a space, quote, '$', ';', '#' or brace): move var/ (PORTAL_VAR_DIR), "
                             "or PORTAL_FRONT=asyncio")
        nginx = None
    return ("nginx", nginx) if nginx else ("asyncio", None)


def port_in_use(host: str, port: str, what: str = "the web server", variable: str = "PORTAL_PORT",
                avoid: frozenset[int] = frozenset()) -> str | None:
    """Why ``what`` could not listen on host:port, or None when it can; the advice names a port that
    is free now and not in ``avoid`` (the portal's other port).

    Checked before anything starts: gunicorn alone would retry for five seconds
    and exit, and the launcher would restart it until it gives up.
    """
    import socket

    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        return f"{host}:{port} is not an address to listen on ({exc}): check PORTAL_HOST and {variable}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            s.bind(address)
        except OSError as exc:
            problem = exc.strerror
        else:
            return None
    from portal.process import checks

    holder = checks.port_holder(host, int(port))
    who = f"pid {holder[0]} ({holder[1]})" if holder and holder[0] is not None else "another program"
    return (f"{what} cannot listen on {host}:{port} ({problem}): {who} holds it; stop that program, or "
            f"{suggest_port(host, int(port), variable, avoid)}")


def suggest_port(host: str, port: int, variable: str, avoid: frozenset[int] = frozenset()) -> str:
    """"choose another port, e.g. PORTAL_PORT=8002 make run", with a port free now (not only the next)."""
    from portal.process import checks

    other = checks.free_port(host, port + 1, set(avoid) | {port})
    if other is None:
        return f"choose another port with {variable}=PORT make run"
    return f"choose another port, e.g. {variable}={other} make run"


def _without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


class Part:
    """One supervised part: how to start it, its process, and its crashes in a row."""

    def __init__(self, name: str, start: Callable[[], subprocess.Popen], where: str) -> None:
        self.name = name
        self.start = start
        self.where = where  # where its output goes, for the give-up message
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.crashes = 0
        self.restart_at = 0.0


class Launcher:
    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.stop_signal: int | None = None
        self.stopping = False
        self.lock_fd: int | None = None
        self.front = ""

    # Processes -------------------------------------------------------------

    def popen(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            env=env,
            # Own session: Ctrl-C reaches only the launcher, which then stops
            # the parts in order; and the session names every process of a part.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def start_part(self, part: Part) -> None:
        part.process = part.start()
        part.started_at = time.monotonic()

    def stop_part(self, part: Part) -> None:
        self.stop_parts([part])

    def stop_parts(self, parts: list[Part]) -> None:
        """SIGTERM to each at once, then wait for all within one grace period; SIGKILL the late."""
        running = [p for p in parts if p.process is not None]
        for part in running:
            if part.process.poll() is None:
                _say(f"stopping {part.name} (pid {part.process.pid})")
                part.process.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for part in running:
            process = part.process
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"{part.name} did not stop within {GRACE_SECONDS} s; killing it")
                process.kill()
                process.wait()
            # Whatever of its session outlived it (a worker's pool processes after a
            # SIGKILL, a gunicorn worker) goes too.
            _kill_session(process.pid)

    def stop_all(self) -> None:
        self.stopping = True
        # Redis last: the workers and beat talk to it while they stop. The others need nothing
        # of each other to stop, so they stop together.
        redis = [p for p in self.parts if p.name == "redis"]
        self.stop_parts([p for p in reversed(self.parts) if p.name != "redis"])
        self.stop_parts(redis)
        for part in self.parts:
            part.process = None

    # Set-up ----------------------------------------------------------------

    def take_lock(self, url: str) -> bool:
        # Before the first write, and inherited by every child (Redis, worker, beat, web server).
        paths.private_umask()
        for line in paths.fix_modes():
            _say(f"warning: {line}")
        paths.ensure_dirs()
        fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # flock: released by the kernel however the launcher ends, so a
            # crash never leaves a stale lock behind.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another launcher"
            os.close(fd)
            _say(
                f"the portal is already running from {paths.VAR_DIR} ({holder}). Use that one, "
                "or stop it first: Ctrl-C in its terminal, or kill -INT its pid."
            )
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, serving {url}\n".encode())
        self.lock_fd = fd
        return True

    def stop_leftovers(self) -> None:
        """Before the ports are checked: a leftover web server or front would hold them."""
        import psutil

        found = leftovers()
        for old in found:
            try:
                _say(f"stopping pid {old.pid}, left running by an earlier run from this folder: "
                     f"{' '.join(old.cmdline())[:120]}")
                old.kill()
            except psutil.Error:
                pass  # gone meanwhile (an nginx worker whose master went first)
        psutil.wait_procs(found, timeout=5)

    def set_up(self, env: dict[str, str]) -> bool:
        manage = [sys.executable, str(paths.BASE_DIR / "manage.py")]
        # The routes file is written before the front starts, from the applications' rows.
        for step in (["migrate", "--noinput"], ["ensure_admin"], ["collectstatic", "--noinput", "-v0"],
                     ["webapp_routes"]):
            step_env = env if step[0] == "ensure_admin" else _without(env, ADMIN_PASSWORD)
            code = subprocess.run([*manage, *step], env=step_env, cwd=paths.BASE_DIR, check=False).returncode
            if self.stop_signal:
                return False
            if code != 0:
                _say(f"'manage.py {step[0]}' failed with code {code}: see its message above; "
                     "fix it and run make run again")
                return False
        return True

    # The parts ---------------------------------------------------------------

    def build_parts(self, env: dict[str, str], host: str, port: str, apps_port: str = "8001") -> None:
        venv_bin = Path(sys.executable).parent
        if not env.get("REDIS_URL"):
            redis_log = paths.LOG_DIR / "redis.log"
            redis_env = _without(env, ADMIN_PASSWORD, *DJANGO_SECRETS)

            def start_redis() -> subprocess.Popen:
                # Read at each start: the file is the one place the password is kept. A
                # var/ made before there was one gets it here (or from `manage.py migrate`
                # above), and its old password-less redis-server, if one was left running,
                # was stopped by stop_leftovers.
                return redis_server.start(
                    paths.REDIS_DIR, password=paths.redis_password(), log_file=redis_log,
                    preexec_fn=_die_with_parent, env=redis_env,
                )

            self.parts.append(Part("redis", start_redis, f"its log is {redis_log}"))

        env = _without(env, ADMIN_PASSWORD)

        host_name = paths.this_host()
        from portal.queues import build_queue, worker_queues

        worker_argv = [
            str(venv_bin / "celery"), "-A", "portal.celery", "worker",
            "--hostname", f"portal@{host_name}",
            "--queues", ",".join(worker_queues(host_name)),
            "--concurrency", env.get("PORTAL_WORKER_CONCURRENCY", "2"),
            "--loglevel", "INFO",
        ]
        # Virtualenv builds (pip, minutes) have a worker of their own: they never hold the slots
        # that starts and stops need.
        build_worker_argv = [
            str(venv_bin / "celery"), "-A", "portal.celery", "worker",
            "--hostname", f"build@{host_name}",
            "--queues", build_queue(host_name),
            "--concurrency", env.get("PORTAL_BUILD_CONCURRENCY", "2"),
            "--loglevel", "INFO",
        ]
        # Beat is a part of its own, not the worker's --beat: Celery advises against the
        # embedded beat in production, and a worker that dies must not take the
        # schedule along (or, before, leave an orphaned scheduler behind).
        beat_argv = [
            str(venv_bin / "celery"), "-A", "portal.celery", "beat",
            "--schedule", str(SCHEDULE_FILE),
            "--pidfile", str(paths.RUN_DIR / "celerybeat.pid"),  # a second beat here is refused
            "--loglevel", "INFO",
        ]
        web_argv = [
            str(venv_bin / "gunicorn"), "portal.wsgi:application",
            "--bind", f"{host}:{port}",
            "--worker-class", "gthread",
            "--workers", env.get("PORTAL_WEB_WORKERS", "2"),
            "--threads", "4",
            "--access-logfile", str(ACCESS_LOG),
            "--error-logfile", "-",
            "--graceful-timeout", "5",
            # No control socket: whoever can connect to it may `show config`, `worker kill` or
            # `shutdown quick`, and the sandbox does not check connect() on a unix socket, so
            # hosted code could. Nothing of the portal uses it (its default, ~/.gunicorn, is
            # shared by every gunicorn of the user besides).
            "--no-control-socket",
        ]
        self.parts.append(Part("celery worker", lambda: self.popen(worker_argv, env), "its output is above"))
        build_env = dict(env, PYTHONWARNINGS=",".join(filter(None, [env.get("PYTHONWARNINGS"),
                                                                       ROOT_WARNING_FILTER])))
        self.parts.append(Part("celery build worker", lambda: self.popen(build_worker_argv, build_env),
                               "its output is above"))
        self.parts.append(Part("celery beat", lambda: self.popen(beat_argv, env), "its output is above"))
        self.parts.append(Part("web server", lambda: self.popen(web_argv, env), "its output is above"))

        # The front needs no secret: it reads the routes file and writes its figures.
        kind, nginx = front_kind(env)
        front_env = _without(env, *DJANGO_SECRETS)
        listen = f"{host}:{apps_port}"
        common = ["--listen", listen, "--routes", str(paths.ROUTES_FILE), "--metrics", str(paths.FRONT_METRICS_FILE)]
        common += [arg for proxy in trusted_proxies(env) for arg in ("--trusted-proxy", proxy)]
        if kind == "nginx":
            # The runner renders var/front/nginx/nginx.conf (pid, logs and temp folders beside it)
            # and reloads nginx gracefully (SIGHUP) whenever the routes file changes.
            front_argv = [sys.executable, "-m", "webapps.front.nginx", *common,
                          "--dir", str(paths.NGINX_DIR), "--nginx", str(nginx)]
            where = f"its output is above; nginx's log is {paths.NGINX_DIR / 'error.log'}"
        else:
            front_argv = [sys.executable, "-m", "webapps.front", *common]
            where = "its output is above"
        self.front = kind
        self.parts.append(Part(f"front ({kind})", lambda: self.popen(front_argv, front_env), where))

    def supervise(self) -> int:
        """Restart a part that died, with a growing delay; give up after too many crashes."""
        while self.stop_signal is None:
            now = time.monotonic()
            for part in self.parts:
                if part.process is None:
                    if now >= part.restart_at:
                        _say(f"restarting {part.name}")
                        try:
                            self.start_part(part)
                        except (OSError, RuntimeError) as exc:
                            _say(f"{part.name} could not start: {exc}")
                            if not self.crashed(part, now):
                                return 1
                    continue
                code = part.process.poll()
                if code is None:
                    if part.crashes and now - part.started_at >= STABLE_SECONDS:
                        part.crashes = 0
                    continue
                _say(f"{part.name} (pid {part.process.pid}) {_how(code)}")
                self.stop_part(part)
                if not self.crashed(part, now):
                    return 1
            time.sleep(0.2)
        return 0

    def crashed(self, part: Part, now: float) -> bool:
        """Count a crash; schedule the restart, or give up (False)."""
        part.process = None
        part.crashes += 1
        if part.crashes > len(RESTART_DELAYS):
            _say(f"{part.name} crashed {part.crashes} times in a row; giving up: stopping the portal. "
                 f"Fix the cause ({part.where}) and run make run again.")
            self.stop_all()
            return False
        delay = RESTART_DELAYS[part.crashes - 1]
        part.restart_at = now + delay
        _say(f"{part.name} will be restarted in {delay:g} s (crash {part.crashes} of "
             f"{len(RESTART_DELAYS)} allowed in a row)")
        return True

    def run(self) -> int:
        host = os.environ.get("PORTAL_HOST", "127.0.0.1")
        port = os.environ.get("PORTAL_PORT", "8000")
        apps_port = os.environ.get("PORTAL_APPS_PORT", "8001")
        url = f"http://{host}:{port}/"
        env = dict(os.environ)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

        if not self.take_lock(url):
            return 1
        # Counted before anything starts: what an earlier run left running on purpose.
        found = still_kept()
        self.stop_leftovers()
        try:
            front_kind(env)
            trusted_proxies(env)
        except ValueError as exc:
            _say(str(exc))
            return 1
        others = frozenset(int(p) for p in (port, apps_port) if p.isdigit())
        problem = port_in_use(host, port, avoid=others)
        if problem is None and apps_port == port:
            problem = (f"PORTAL_APPS_PORT and PORTAL_PORT are both {port}: the applications need a port of their "
                       f"own (so that they never share the portal's origin); "
                       f"{suggest_port(host, int(port), 'PORTAL_APPS_PORT', others)}")
        problem = problem or port_in_use(host, apps_port, "the applications' front", "PORTAL_APPS_PORT", others)
        if problem:
            _say(problem)
            return 1
        if not self.set_up(env):
            return 130 if self.stop_signal else 1
        self.build_parts(env, host, port, apps_port)
        for part in self.parts:
            if self.stop_signal:
                break
            _say(f"starting {part.name}")
            try:
                self.start_part(part)
            except (OSError, RuntimeError) as exc:
                _say(f"{part.name} could not start: {exc}")
                self.stop_all()
                return 1
        if self.stop_signal is None:
            _say(f"the portal is at {url}  (Ctrl-C stops it)")
            _say(f"web applications are served at http://{host}:{apps_port}/ by the {self.front} front")
            _say(hosted_users_line())
            if any(found.values()):
                _say(found_message(found))
            password_file = paths.VAR_DIR / "admin-password.txt"
            if password_file.exists():
                _say(f"log in as admin; the generated password is in {password_file}")
        code = self.supervise()
        if not self.stopping:
            self.stop_all()
            _say(closing_message(still_kept()))
        return code

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only a flag: the main loop stops the parts, so a signal never cuts a
        # start or a stop in half.
        first = self.stop_signal is None
        if first:
            self.stop_signal = signum
        try:
            if first:
                _say(f"{signal.Signals(signum).name} received; stopping")
            else:
                _say(f"already stopping (each part gets {GRACE_SECONDS} s before it is killed)")
        except RuntimeError:
            pass  # the signal came in the middle of another print: the flag is what matters


def still_kept(run_root: Path | None = None) -> dict[str, int]:
    """How many processes of each kind have a live keeper on this host now (the OS's word,
    not the database's: a keeper is what keeps running after the launcher)."""
    root = run_root or paths.RUN_DIR
    counts = {}
    for folder in KEPT_KINDS:
        try:
            run_dirs = [d for d in (root / folder).iterdir() if d.is_dir()]
        except OSError:
            run_dirs = []
        counts[folder] = sum(1 for d in run_dirs if rundir.keeper_alive(d))
    return counts


def _and(words: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words)


def closing_message(counts: dict[str, int]) -> str:
    """"stopped", and what keeps running, named only when something does."""
    kept = [f"{n} {KEPT_KINDS[folder][0 if n == 1 else 1]}" for folder, n in counts.items() if n]
    if not kept:
        return "stopped"
    verb, them = ("keeps", "it") if sum(counts.values()) == 1 else ("keep", "them")
    text = f"stopped; {_and(kept)} started from the portal {verb} running: stop {them} in the portal"
    if counts.get("webapps"):
        text += "; the web applications answer again when the portal and its front are back"
    return text


def found_message(counts: dict[str, int]) -> str:
    """What an earlier run left running, counted as the closing message counts it, said at start."""
    kept = [f"{n} {KEPT_KINDS[folder][0 if n == 1 else 1]}" for folder, n in counts.items() if n]
    verb, them, are = ("is", "it", "it is") if sum(counts.values()) == 1 else ("are", "them", "they are")
    text = f"{_and(kept)} started from the portal before {verb} still running: the portal takes {them} " \
           f"back as {are}"
    if counts.get("webapps"):
        text += "; the web applications answer again once the front is up"
    return text


def main() -> int:
    return Launcher().run()


if __name__ == "__main__":
    sys.exit(main())
