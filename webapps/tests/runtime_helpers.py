"""Helpers for the tests of webapps.runtime: one cached virtualenv with every engine, apps under a keeper.

The virtualenv holds the Flask and FastAPI examples' requirements and the three engines at the
versions the portal installs (``engines.ENGINE_REQUIREMENTS``). It is built once by
``venvs.ensure_venv`` itself under ``var/test-venvs/runtime`` (``PORTAL_TEST_VENVS`` overrides) and
found up to date on later runs: its stamp is the hash of what went into it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from portal import paths
from portal.process import keeper
from portal.process.sandbox import portal_policy
from webapps.runtime.engines import ENGINE_REQUIREMENTS, AppRun, build_spec
from webapps.runtime.venvs import ensure_venv
from webapps.tests.example_servers import EXAMPLES, ROOT, VENVS, http_request

SERVE_VENV_ROOT = VENVS / "runtime"

# A bare ASGI application: /sleep awaits one second, websockets echo, / says its version.
ASGI_APP = '''
import asyncio

VERSION = "one"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": "echo " + (message.get("text") or "")})
    path = scope["path"][len(scope.get("root_path") or ""):]
    if path == "/sleep":
        await asyncio.sleep(1)
    if path == "/whoami":
        body = f"{scope['scheme']} {scope['client'][0] if scope.get('client') else None}".encode()
    else:
        body = f"{VERSION} root_path={scope.get('root_path')!r} path={scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
'''

# A bare WSGI application that says its version and its mount.
WSGI_APP = '''
VERSION = "one"


def app(environ, start_response):
    body = f"{VERSION} script_name={environ.get('SCRIPT_NAME')!r} path_info={environ.get('PATH_INFO')}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
'''


def serve_requirements() -> Path:
    """The requirements of the shared virtualenv (written beside it; same text, same hash)."""
    text = "\n".join([
        (EXAMPLES / "flaskapp" / "requirements.txt").read_text(),
        (EXAMPLES / "fastapiapp" / "requirements.txt").read_text(),
        *ENGINE_REQUIREMENTS.values(),
        "",
    ])
    SERVE_VENV_ROOT.mkdir(parents=True, exist_ok=True)
    path = SERVE_VENV_ROOT / "requirements.txt"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def serve_python() -> str:
    """The interpreter of the shared virtualenv (built on first use, in about ten seconds)."""
    venv = ensure_venv(SERVE_VENV_ROOT, serve_requirements(), engine=None)
    return str(venv.python)


def short_dir(name: str) -> Path:
    """A folder in /tmp whose socket paths fit the 107 bytes of a unix socket address (pytest's
    tmp_path can be longer); the caller removes it."""
    return Path(tempfile.mkdtemp(prefix=f"wr-{name}-"))


class RunningApp:
    def __init__(self, app: AppRun, run_dir: Path) -> None:
        self.app = app
        self.run_dir = run_dir
        self.socket = Path(app.socket)

    def get(self, path: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        """GET ``path`` below the mount, with the full path as the front sends it."""
        return http_request(self.socket, "GET", self.app.mount + path, **kwargs)

    def status(self) -> dict[str, Any]:
        return keeper.read_status(self.run_dir) or {}

    def events(self) -> list[dict[str, Any]]:
        return keeper.read_events(self.run_dir)

    def log(self) -> str:
        path = Path(self.app.log_file or self.run_dir / "output.log")
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        keeper.request_stop(self.run_dir, timeout=20)


def start_app(app: AppRun, run_dir: Path, timeout: float = 60.0, **spec_options: Any) -> RunningApp:
    """Launch ``app`` under a keeper and wait until it is running."""
    spec = build_spec(app, **spec_options)
    spec.env.setdefault("PYTHONPATH", str(ROOT))  # the examples' /interop imports gateways.client
    # The sandbox the portal gives a web application (processes.adapters.ProcessAdapter.sandbox_policy).
    spec.sandbox = portal_policy(var_dir=str(paths.VAR_DIR), base_dir=str(ROOT), run_dir=str(run_dir),
                                 writable=[app.directory])
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"running", "fatal", "exited"}, timeout=timeout)
    running = RunningApp(app, run_dir)
    if status.get("state") != "running":
        running.stop()
        raise AssertionError(f"{app.engine} did not start: {status.get('error')}\n{running.log()[-3000:]}")
    return running


@contextmanager
def started(app: AppRun, run_dir: Path, **options: Any) -> Iterator[RunningApp]:
    running = start_app(app, run_dir, **options)
    try:
        yield running
    finally:
        running.stop()


def wait_for_answer(running: RunningApp, path: str, wanted: str, timeout: float) -> float:
    """Seconds until GET ``path`` answers a body containing ``wanted``; AssertionError after ``timeout``."""
    start = time.monotonic()
    last = ""
    while time.monotonic() - start < timeout:
        try:
            answer = running.get(path)
            last = answer.text
            if answer.status == 200 and wanted in last:
                return time.monotonic() - start
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.02)
    raise AssertionError(f"no answer with {wanted!r} within {timeout} s; last: {last}\n{running.log()[-2000:]}")
