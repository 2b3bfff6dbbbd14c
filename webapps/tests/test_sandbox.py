"""The Landlock sandbox of a web application (portal/process/sandbox.py), with real engines under
real keepers: an application whose code tries what a hostile one would is refused each thing, and
still serves, writes its own folder and the temporary ones, and is stopped and reloaded by its keeper.

The tests that need Landlock skip on a kernel without it (run them on Linux >= 6.12 with Landlock
enabled: ``cat /sys/kernel/security/lsm`` lists it); ``test_this_kernel_has_landlock`` fails
instead of skipping wherever the kernel knows the Landlock syscalls, so a CI whose kernel has it
disabled or too old cannot skip the others silently.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from conftest import wait_until
from portal import paths
from portal.process import keeper, sandbox
from webapps.runtime.engines import AppRun
from webapps.tests.example_servers import ROOT
from webapps.tests.runtime_helpers import WSGI_APP, serve_python, short_dir, start_app

ABI = sandbox.abi_version()
needs_landlock = pytest.mark.skipif(
    isinstance(ABI, str) or ABI < sandbox.ABI_NEEDED,
    reason=f"needs Landlock ABI >= {sandbox.ABI_NEEDED} (here: {ABI}); run on Linux >= 6.12 with Landlock enabled",
)

# Each attempt of a hostile application, and the errno it met ("ok": it worked).
PROBE_APP = '''
import errno, json, os, signal

HERE = os.path.dirname(os.path.abspath(__file__))


def attempts():
    t = json.load(open(os.path.join(HERE, "targets.json")))
    out = {}

    def attempt(name, action):
        try:
            action()
            out[name] = "ok"
        except OSError as e:
            out[name] = errno.errorcode.get(e.errno, str(e.errno))

    def write(path):
        with open(path, "w") as f:
            f.write("x")
        os.unlink(path)

    def read(path):
        with open(path, "rb") as f:
            f.read(16)

    attempt("read var/secret_key", lambda: read(t["secret_key"]))
    attempt("read the database", lambda: read(t["database"]))
    attempt("list var/", lambda: os.listdir(t["var"]))
    attempt("write BASE_DIR", lambda: write(t["base_file"]))
    attempt("write the portal's .venv", lambda: write(t["venv_file"]))
    attempt("write $HOME", lambda: write(t["home_file"]))
    for who in ("portal", "keeper", "other app"):
        attempt(f"signal 0 to the {who}", lambda: os.kill(t[who], 0))
    # A real signal, but one that harms nothing if it arrives: the portal and the keeper must live.
    attempt("SIGCONT to the portal", lambda: os.kill(t["portal"], signal.SIGCONT))
    attempt("SIGCONT to the keeper", lambda: os.kill(t["keeper"], signal.SIGCONT))
    attempt("SIGTERM to the other app", lambda: os.kill(t["other app"], signal.SIGTERM))
    attempt("read the portal's environ", lambda: read(f"/proc/{t['portal']}/environ"))
    attempt("write its own folder", lambda: write(os.path.join(HERE, "own.txt")))
    attempt("write a folder of /tmp", lambda: write(t["tmp_file"]))
    attempt("write /var/tmp", lambda: write(f"/var/tmp/probe-{os.getpid()}"))
    attempt("write /dev/shm", lambda: write(f"/dev/shm/probe-{os.getpid()}"))
    attempt("write /dev/null", lambda: open("/dev/null", "w").write("x"))
    attempt("read /dev/urandom", lambda: open("/dev/urandom", "rb").read(4))
    attempt("import gateways.client", lambda: __import__("gateways.client"))
    return out


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(attempts()).encode()]


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(attempts()).encode()})
'''

DENIED = ("read var/secret_key", "read the database", "list var/", "write BASE_DIR", "write the portal's .venv",
          "write $HOME", "signal 0 to the portal", "signal 0 to the keeper", "signal 0 to the other app",
          "SIGCONT to the portal", "SIGCONT to the keeper", "SIGTERM to the other app", "read the portal's environ")
ALLOWED = ("write its own folder", "write a folder of /tmp", "write /var/tmp", "write /dev/shm", "write /dev/null",
           "read /dev/urandom", "import gateways.client")


def private_file(path: Path) -> Path:
    """``path`` in var/, made (as a stand-in) when this run has none: it must exist to be refused."""
    if not path.exists():
        path.write_bytes(b"stand-in for " + path.name.encode())
        path.chmod(0o600)
    return path


@pytest.fixture
def folders():  # type: ignore[no-untyped-def]
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(short_dir(name))
        return made[-1]

    yield make
    for folder in made:
        if keeper.keeper_alive(folder / "run"):
            keeper.request_stop(folder / "run", timeout=20, trigger="test")
        shutil.rmtree(folder, ignore_errors=True)


def start_probe(folders, engine: str, protocol: str, other_pid: int):  # type: ignore[no-untyped-def]
    base = folders(f"probe-{engine}")
    directory = base / "app"
    directory.mkdir()
    (directory / "probe.py").write_text(PROBE_APP)
    run_dir = base / "run"
    tmp_folder = Path(tempfile.mkdtemp(prefix="probe-tmp-"))
    targets = {
        "secret_key": str(private_file(paths.VAR_DIR / "secret_key")),
        "database": str(private_file(paths.VAR_DIR / "test.sqlite3")),
        "var": str(paths.VAR_DIR),
        "base_file": str(ROOT / f"sandbox_probe_{engine}.py"),
        "venv_file": str(Path(os.path.realpath(ROOT / ".venv")) / f"sandbox-probe-{engine}"),
        "home_file": str(Path.home() / f"sandbox-probe-{engine}"),
        "portal": os.getpid(),  # this test stands for the portal's web server and worker
        "other app": other_pid,
        "tmp_file": str(tmp_folder / "probe.txt"),
    }

    def write_targets(keeper_pid: int) -> None:
        (directory / "targets.json").write_text(json.dumps({**targets, "keeper": keeper_pid}))

    write_targets(os.getpid())
    app = AppRun(mount="/probe", directory=str(directory), module="probe", callable="app" if protocol == "wsgi"
                 else "asgi", socket=str(run_dir / "app.sock"), protocol=protocol, engine=engine, python=serve_python(),
                 workers=2 if engine == "uvicorn" else 1)
    running = start_app(app, run_dir)
    write_targets(running.status()["keeper_pid"])
    return running, tmp_folder


@needs_landlock
@pytest.mark.parametrize("engine,protocol", [("gunicorn", "wsgi"), ("uvicorn", "asgi"), ("granian", "asgi")])
def test_a_hostile_application_is_refused_the_portal_s_secrets_code_and_processes(folders, engine, protocol):
    other_dir = folders("other")
    (other_dir / "app").mkdir()
    (other_dir / "app" / "bare.py").write_text(WSGI_APP)
    other = start_app(AppRun(mount="/other", directory=str(other_dir / "app"), module="bare", callable="app",
                             socket=str(other_dir / "run" / "app.sock"), protocol="wsgi", engine="gunicorn",
                             python=serve_python()), other_dir / "run")
    other_pid = other.status()["pid"]
    running, tmp_folder = start_probe(folders, engine, protocol, other_pid)
    try:
        assert running.status()["sandbox"].startswith(f"sandboxed (Landlock ABI {ABI})")
        answer = running.get("/")
        assert answer.status == 200, answer.text
        result = json.loads(answer.text)
        refused = {name: result[name] for name in DENIED}
        # Where the process is of the portal's own user, its private mount namespace refuses first:
        # var/ is an empty tmpfs (ENOENT) and the installation read-only (EROFS); Landlock: EACCES.
        refused = {name: "EACCES" if value in ("EROFS", "ENOENT") and not ("signal" in name or "SIG" in name)
                   else value for name, value in refused.items()}
        assert refused == {name: "EPERM" if "signal" in name or "SIG" in name else "EACCES" for name in DENIED}
        assert {name: result[name] for name in ALLOWED} == dict.fromkeys(ALLOWED, "ok")
        assert psutil.pid_exists(other_pid) and other.get("/").status == 200  # its SIGTERM never arrived
    finally:
        shutil.rmtree(tmp_folder, ignore_errors=True)
    # The keeper, outside the sandbox, still stops it: SIGTERM to the group, all gone.
    pid = running.status()["pid"]
    running.stop()
    assert keeper.read_status(running.run_dir)["state"] == "stopped"
    wait_until(lambda: not psutil.pid_exists(pid), timeout=10)


@needs_landlock
def test_the_keeper_reloads_a_sandboxed_gunicorn_with_sighup_and_restarts_it(folders):
    base = folders("reload")
    directory = base / "app"
    directory.mkdir()
    (directory / "bare.py").write_text(WSGI_APP)
    app = AppRun(mount="/bare", directory=str(directory), module="bare", callable="app",
                 socket=str(base / "run" / "app.sock"), protocol="wsgi", engine="gunicorn", python=serve_python(),
                 debug=True)
    running = start_app(app, base / "run")
    try:
        assert running.status()["sandbox"].startswith("sandboxed")
        master = running.status()["pid"]
        workers = {p.pid for p in psutil.Process(master).children()}
        (directory / "bare.py").write_text(WSGI_APP.replace('"one"', '"two"'))
        wait_until(lambda: running.get("/").text.startswith("two"), timeout=20,
                   message=f"no reload: {running.log()[-2000:]}")
        assert running.status()["pid"] == master  # a graceful reload: new workers, same master
        wait_until(lambda: not workers & {p.pid for p in psutil.Process(master).children()}, timeout=20,
                   message="the old worker was not retired")
        assert any(e.get("how") == "SIGHUP" for e in running.events())
    finally:
        running.stop()
    assert keeper.read_status(running.run_dir)["state"] == "stopped"


@needs_landlock
def test_a_process_in_the_sandbox_cannot_signal_out_but_the_keeper_signals_in(tmp_path):
    """The scopes both ways, with no engine: the sandboxed child's kill(2) of its starter and its
    connect(2) to the starter's abstract unix socket are refused; the starter's SIGTERM reaches it."""
    import socket
    import subprocess

    name = f"portal-sandbox-test-{os.getpid()}"  # abstract: a NUL first, no file
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(chr(0) + name)
    listener.listen(1)
    pol = sandbox.portal_policy(var_dir=str(paths.VAR_DIR), base_dir=str(ROOT), run_dir=str(tmp_path))
    code = ("import os, signal, socket, sys, time\n"
            "try:\n    os.kill(os.getppid(), signal.SIGCONT); print('signal sent', flush=True)\n"
            "except PermissionError:\n    print('signal refused', flush=True)\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "try:\n    s.connect(chr(0) + sys.argv[1]); print('connected', flush=True)\n"
            "except PermissionError:\n    print('connect refused', flush=True)\n"
            "time.sleep(30)\n")
    child = subprocess.Popen(sandbox.wrap([sys.executable, "-c", code, name], pol), stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert [child.stdout.readline().strip() for _ in range(2)] == ["signal refused", "connect refused"]
        start = time.monotonic()
        child.send_signal(signal.SIGTERM)
        assert child.wait(5) == -signal.SIGTERM and time.monotonic() - start < 5
    finally:
        child.kill()
        listener.close()


def test_this_kernel_has_landlock():
    """Not a skip: where the kernel knows the Landlock syscalls (all of this project's machines), the
    sandbox must be available, or every test above would skip unseen. Only a kernel without the
    syscalls at all (ENOSYS, or not Linux) skips, with the reason."""
    if isinstance(ABI, str) and ("no Landlock" in ABI or "Linux feature" in ABI):
        pytest.skip(f"{ABI}: the sandbox cannot be tested here; run on Linux >= 6.12 with Landlock enabled")
    assert isinstance(ABI, int) and ABI >= sandbox.ABI_NEEDED, f"the sandbox is not available: {ABI}"


@needs_landlock
def test_the_import_check_runs_the_application_s_code_in_the_sandbox_too(tmp_path, settings):
    """Saving or starting a definition imports its module (webapps.checks): that code is the
    application's, so it runs in the same sandbox, and a module that reads the secret key at
    import time fails the check with the refusal."""
    from webapps.checks import check_application

    folder = tmp_path / "site"
    folder.mkdir()
    secret = private_file(paths.VAR_DIR / "secret_key")
    (folder / "web.py").write_text(f"KEY = open({str(secret)!r}).read()\n" + WSGI_APP)
    problem = check_application(python=sys.executable, directory=str(folder), module="web", callable_name="app",
                                protocol="wsgi", env={}, timeout=20)
    assert problem is not None and "PermissionError" in problem.message, problem
    (folder / "web.py").write_text(WSGI_APP)
    assert check_application(python=sys.executable, directory=str(folder), module="web", callable_name="app",
                             protocol="wsgi", env={}, timeout=20) is None
    settings.PORTAL_SANDBOX = "off"
    (folder / "web.py").write_text(f"KEY = open({str(secret)!r}).read()\n" + WSGI_APP)
    from processes.accounts import cannot_switch

    if cannot_switch() is None:  # the second wall: the check runs as a user of its own, not the portal's
        problem = check_application(python=sys.executable, directory=str(folder), module="web",
                                    callable_name="app", protocol="wsgi", env={}, timeout=20)
        assert problem is not None and "PermissionError" in problem.message, problem
    settings.PORTAL_HOSTED_USERS = "off"  # and with neither wall the module reads it: the test can fail
    assert check_application(python=sys.executable, directory=str(folder), module="web", callable_name="app",
                             protocol="wsgi", env={}, timeout=20) is None


@pytest.mark.parametrize("variables,message", [
    ({"PORTAL_SANDBOX": "maybe"}, "PORTAL_SANDBOX='maybe' is not on, off or required"),
    ({"PORTAL_SANDBOX_WRITABLE": "/srv/ok:relative/dir"},
     "PORTAL_SANDBOX_WRITABLE names 'relative/dir', which is not an absolute path"),
])
def test_a_bad_sandbox_setting_stops_the_portal_with_a_clear_message(tmp_path, variables, message):
    import subprocess

    from portal.tests.test_security_files import portal_env

    env = portal_env(tmp_path / "var") | variables
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
