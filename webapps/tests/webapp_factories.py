"""Small builders for web application definitions in tests: a real directory with a real module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webapps.models import WebApp

WSGI_APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from " + environ.get("SCRIPT_NAME", "").encode()]
'''
ASGI_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})
'''


def app_dir(base: Path, source: str = WSGI_APP, module: str = "hello") -> Path:
    """A folder holding ``module``.py with ``source``."""
    folder = base / "app"
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(source)
    return folder


def form_data(folder: Path | str, **overrides: Any) -> dict[str, Any]:
    """What the create form posts for a valid definition, with overrides."""
    data: dict[str, Any] = {
        "name": "/hello",
        "directory": str(folder),
        "module": "hello",
        "callable": "app",
        "protocol": "wsgi",
        "python_executable": "",
        "requirements_file": "",
        "engine": "",
        "workers": "1",
        "threads": "1",
        "environment": "",
        "secret_environment": "",
        "static_files": "",
        "log_file": "",
        "restart_policy": "on-failure",
        "init_timeout": "30",
        "stop_timeout": "10",
    }
    data.update(overrides)
    return data


def make_webapp(directory: Path | str, **fields: Any) -> WebApp:
    values: dict[str, Any] = {"name": "/hello", "directory": str(directory), "module": "hello",
                              "python_executable": "/usr/bin/python3", "workers": 1, "threads": 1}
    values.update(fields)
    return WebApp.objects.create(**values)


def flask_example(base: Path) -> Path:
    """A copy of examples/webapps/flaskapp: its app.py imports flask, its requirements.txt lists it."""
    import shutil

    from webapps.tests.example_servers import EXAMPLES

    return Path(shutil.copytree(EXAMPLES / "flaskapp", base / "flaskapp",
                                ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3")))


def bare_python(base: Path) -> str:
    """A real interpreter with no package of its own: a virtualenv made without pip."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "bare")], check=True)
    return str(base / "bare" / "bin" / "python")


def portal_python_lacks(package: str) -> str:
    """The portal's own interpreter, the default of a definition, checked to lack ``package`` (as
    a fresh clone's does for the examples' frameworks)."""
    import importlib.util
    import sys

    assert importlib.util.find_spec(package) is None, (
        f"the portal's interpreter {sys.executable} has {package}: this test needs one without it (the "
        f"portal's requirements do not list {package}; uninstall it from the virtualenv)")
    return sys.executable
