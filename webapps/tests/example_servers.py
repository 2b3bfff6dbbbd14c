"""The example applications of examples/webapps/, each in its own virtualenv, served on a unix socket.

A virtualenv is built once from the app's requirements.txt plus its engine and kept under
``var/test-venvs/`` (``PORTAL_TEST_VENVS`` overrides), keyed by a hash of what went into it, so a
second run starts at once. The app runs as the portal will run it: its engine on a unix socket,
the mount in the environment (``SCRIPT_NAME``), the portal's directory on ``PYTHONPATH`` so that
``gateways.client`` imports, and requests carry the full path (``/flask/posts``) as the front
sends them.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "webapps"
def _venvs() -> Path:
    """var/test-venvs/, when this user may write var/ (the project's owner); else a folder of this
    user's own in the temporary folder (the suite run as another user than the checkout's)."""
    var = ROOT / "var"
    if not var.exists() or os.access(var, os.W_OK | os.X_OK):
        return var / "test-venvs"
    import tempfile

    return Path(tempfile.gettempdir()) / f"portal-test-venvs-{os.geteuid()}"


VENVS = Path(os.environ.get("PORTAL_TEST_VENVS") or _venvs())
HOST = "localhost:8001"  # what the front passes on: the apps port of the portal's host


@dataclass(frozen=True)
class Example:
    name: str
    directory: Path
    target: str  # module:callable
    engine: str  # the pinned engine the portal adds to the app's requirements
    mount: str

    @property
    def requirements(self) -> Path:
        return self.directory / "requirements.txt"


EXAMPLE_APPS = {
    "flask": Example("flask", EXAMPLES / "flaskapp", "app:app", "gunicorn==27.0.1", "/flask"),
    "django": Example("django", EXAMPLES / "djangoapp", "mysite.wsgi:application", "gunicorn==27.0.1", "/django"),
    "fastapi": Example("fastapi", EXAMPLES / "fastapiapp", "app:app", "uvicorn==0.54.0", "/fastapi"),
}


def venv_for(example: Example) -> Path:
    """The example's virtualenv, built on first use; the lock keeps two test runs from building it twice."""
    key = hashlib.sha256(
        b"\0".join([example.requirements.read_bytes(), example.engine.encode(), sys.version.encode()])
    ).hexdigest()[:16]
    venv = VENVS / f"{example.name}-{key}"
    python = venv / "bin" / "python"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{example.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        # No pip inside: this interpreter's pip installs into it (--python), which saves the
        # seconds that ensurepip takes for each venv.
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        install = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
             "--disable-pip-version-check", "-r", str(example.requirements), example.engine],
            capture_output=True, text=True,
        )
        if install.returncode:
            raise RuntimeError(f"pip could not build the {example.name} example's virtualenv:\n{install.stderr}")
        (venv / ".complete").write_text(example.engine + "\n")
    return python


# HTTP over a unix socket ----------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over AF_UNIX: the standard library has no unix-socket HTTP client."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        super().__init__(HOST, timeout=timeout)
        self.unix_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        assert "json" in (self.headers.get("Content-Type") or ""), (self.status, self.headers, self.body[:300])
        return json.loads(self.body)

    def cookies(self) -> dict[str, str]:
        """Set-Cookie headers by cookie name, whole (value and attributes)."""
        return {value.split("=", 1)[0]: value for value in self.headers.get_all("Set-Cookie") or []}


def http_request(sock: Path, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                 raw: bytes | None = None) -> Answer:
    conn = UnixHTTPConnection(sock)
    sent = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        conn.close()


# A running example -----------------------------------------------------------------------


@dataclass
class ExampleServer:
    example: Example
    python: Path
    socket: Path
    db_path: Path
    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Answer:
        """``path`` below the mount: ``/posts`` is sent as ``/flask/posts``."""
        return http_request(self.socket, method, self.example.mount + path, body, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_example(example: Example, workdir: Path, env: dict[str, str] | None = None,
                  uvicorn_root_path: str | None = None, timeout: float = 90.0) -> ExampleServer:
    """Serve the example on ``workdir/app.sock`` and wait until it answers its index page.

    ``uvicorn_root_path`` passes ``--root-path`` to uvicorn instead of setting SCRIPT_NAME.
    """
    python = venv_for(example)
    workdir.mkdir(parents=True, exist_ok=True)
    sock = workdir / "app.sock"
    db_path = workdir / "data" / f"{example.name}.sqlite3"  # its folder does not exist yet
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "APP_DB_PATH": str(db_path),
        **({} if uvicorn_root_path is not None else {"SCRIPT_NAME": example.mount}),
        **(env or {}),
    }
    if example.engine.startswith("gunicorn"):
        command = [str(python), "-m", "gunicorn", "--bind", f"unix:{sock}", "--workers", "1",
                   "--worker-class", "gthread", "--threads", "4", "--no-control-socket",
                   "--chdir", str(example.directory), example.target]
    else:
        command = [str(python), "-m", "uvicorn", "--uds", str(sock), "--app-dir", str(example.directory),
                   *(["--root-path", uvicorn_root_path] if uvicorn_root_path is not None else []), example.target]
    # In the sandbox the portal gives a web application, where the kernel has one.
    from portal import paths
    from portal.process import sandbox

    policy = sandbox.portal_policy(var_dir=str(paths.VAR_DIR), base_dir=str(ROOT), run_dir=str(workdir),
                                   writable=[str(example.directory)])
    if sandbox.decide(policy)[0]:
        command = sandbox.wrap(command, policy)
    log_path = workdir / "app.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, cwd=example.directory, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = ExampleServer(example, python, sock, db_path, log_path, child_env, proc)
    probe = "/" if uvicorn_root_path is not None else example.mount + "/"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the {example.name} example exited ({proc.returncode}):\n{server.log()}")
        try:
            if http_request(sock, "GET", probe).status < 500:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"the {example.name} example did not answer within {timeout} s:\n{server.log()}")
        time.sleep(0.05)
