"""The app check: the module imports and the callable is WSGI or ASGI as declared.

Real interpreters: the examples in the shared runtime virtualenv (Flask, FastAPI) and the portal's
own interpreter (Django, which it has, and the broken applications written here).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from webapps.runtime.appcheck import CHECK_SCRIPT, check_app, without_check_frames
from webapps.tests.example_servers import EXAMPLES
from webapps.tests.runtime_helpers import serve_python
from webapps.tests.webapp_factories import bare_python, flask_example

PORTAL_PYTHON = sys.executable


@pytest.fixture(scope="module")
def python() -> str:
    return serve_python()


def write_app(folder: Path, source: str, name: str = "web.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(source)
    return folder


def env_of(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "APP_DB_PATH": str(tmp_path / "db.sqlite3"), **extra}


def test_the_flask_example_is_a_wsgi_application(python: str, tmp_path: Path) -> None:
    result = check_app(python, str(EXAMPLES / "flaskapp"), "app", "app", "wsgi", env=env_of(tmp_path))
    assert result.ok and result.kind == "wsgi", result


def test_the_fastapi_example_is_an_asgi_application(python: str, tmp_path: Path) -> None:
    result = check_app(python, str(EXAMPLES / "fastapiapp"), "app", "app", "asgi", env=env_of(tmp_path))
    assert result.ok and result.kind == "asgi", result
    assert "async __call__" in result.message


def test_flask_declared_asgi_is_refused_saying_what_it_is(python: str, tmp_path: Path) -> None:
    result = check_app(python, str(EXAMPLES / "flaskapp"), "app", "app", "asgi", env=env_of(tmp_path))
    assert not result.ok and result.code == "protocol-mismatch" and result.kind == "wsgi"
    assert "declared ASGI" in result.message and "choose WSGI" in result.message
    assert ": a WSGI application" in result.message and "an WSGI" not in result.message


def test_fastapi_declared_wsgi_is_refused_saying_what_it_is(python: str, tmp_path: Path) -> None:
    result = check_app(python, str(EXAMPLES / "fastapiapp"), "app", "app", "wsgi", env=env_of(tmp_path))
    assert not result.ok and result.code == "protocol-mismatch" and result.kind == "asgi"
    assert "choose ASGI" in result.message and "uvicorn or granian" in result.message
    assert ": an ASGI application" in result.message


def test_the_django_example_is_wsgi_and_its_asgi_handler_is_asgi(tmp_path: Path) -> None:
    env = env_of(tmp_path, DJANGO_SECRET_KEY="check-only-" + "x" * 40)
    wsgi = check_app(PORTAL_PYTHON, str(EXAMPLES / "djangoapp"), "mysite.wsgi", "application", "wsgi", env=env)
    assert wsgi.ok and wsgi.kind == "wsgi", wsgi
    # Django's ASGIHandler instance, from a module of another directory (PYTHONPATH finds mysite).
    folder = write_app(tmp_path / "asgi", "import os\n"
                       "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n"
                       "from django.core.asgi import get_asgi_application\n"
                       "application = get_asgi_application()\n", "djasgi.py")
    env["PYTHONPATH"] = str(EXAMPLES / "djangoapp")
    asgi = check_app(PORTAL_PYTHON, str(folder), "djasgi", "application", "asgi", env=env)
    assert asgi.ok and asgi.kind == "asgi", asgi
    assert "ASGIHandler" in asgi.message


@pytest.mark.parametrize(("source", "protocol", "kind"), [
    ("def app(environ, start_response):\n    return []\n", "wsgi", "wsgi"),
    ("async def app(scope, receive, send):\n    pass\n", "asgi", "asgi"),
    ("def app(scope, receive, send):\n    return None\n", "asgi", "asgi"),  # a 3-argument callable
    ("class App:\n    async def __call__(self, scope, receive, send):\n        pass\napp = App()\n", "asgi", "asgi"),
])
def test_plain_callables_are_told_apart(tmp_path: Path, source: str, protocol: str, kind: str) -> None:
    result = check_app(PORTAL_PYTHON, str(write_app(tmp_path, source)), "web", "app", protocol)
    assert result.ok and result.kind == kind, result


def test_a_dotted_module_works(tmp_path: Path) -> None:
    package = write_app(tmp_path / "site" / "pkg", "", "__init__.py")
    (package / "serve.py").write_text("def application(environ, start_response):\n    return []\n")
    result = check_app(PORTAL_PYTHON, str(tmp_path / "site"), "pkg.serve", "application", "wsgi")
    assert result.ok and result.kind == "wsgi", result


def test_a_syntax_error_shows_the_file_and_line(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "def app(environ, start_response:\n    return []\n")
    result = check_app(PORTAL_PYTHON, str(folder), "web", "app", "wsgi")
    assert not result.ok and result.code == "import-failed"
    assert "SyntaxError" in result.message
    assert any("web.py" in line and "line 1" in line for line in result.traceback), result.traceback


def test_an_error_at_import_shows_the_last_lines_of_the_traceback(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "import os\nSETTING = os.environ['APP_SETTING']\napp = None\n")
    result = check_app(PORTAL_PYTHON, str(folder), "web", "app", "wsgi")
    assert not result.ok and result.code == "import-failed"
    assert "KeyError: 'APP_SETTING'" in result.message
    assert result.traceback[-1] == "KeyError: 'APP_SETTING'"
    assert any("line 2" in line for line in result.traceback)


def test_a_missing_module_names_the_directory(tmp_path: Path) -> None:
    result = check_app(PORTAL_PYTHON, str(write_app(tmp_path, "app = None\n")), "wbe", "app", "wsgi")
    assert not result.ok and result.code == "module-missing"
    assert "no module wbe" in result.message and str(tmp_path) in result.message and "without .py" in result.message


def test_a_module_importing_a_missing_package_names_the_package_and_the_importer(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "import os\nimport no_such_package_here.sub\n")
    result = check_app(PORTAL_PYTHON, str(folder), "web", "app", "wsgi")
    assert not result.ok and result.code == "package-missing"
    assert (result.package, result.importer) == ("no_such_package_here", "web.py")
    assert result.message == f"{PORTAL_PYTHON} lacks the package 'no_such_package_here' that web.py imports"
    assert result.traceback[-1] == "ModuleNotFoundError: No module named 'no_such_package_here'"
    assert any("web.py" in line and "line 2" in line for line in result.traceback), result.traceback


def test_the_flask_example_in_an_interpreter_without_flask_says_it_lacks_flask(tmp_path: Path) -> None:
    python = bare_python(tmp_path)
    result = check_app(python, str(flask_example(tmp_path)), "app", "app", "wsgi")
    assert not result.ok and result.code == "package-missing"
    assert result.message == f"{python} lacks the package 'flask' that app.py imports"


def test_a_missing_module_of_the_applications_own_package_is_an_import_error(tmp_path: Path) -> None:
    write_app(tmp_path / "mine", "", "__init__.py")
    folder = write_app(tmp_path, "import mine.gone\n")
    result = check_app(PORTAL_PYTHON, str(folder), "web", "app", "wsgi")
    assert not result.ok and result.code == "import-failed"
    assert "No module named 'mine.gone'" in result.message


@pytest.mark.parametrize("source", [
    "def app(environ, start_response:\n    return []\n",  # a SyntaxError
    "import os\nSETTING = os.environ['APP_SETTING']\n",  # an error at import
    "import no_such_package_here\n",  # a package the interpreter lacks
])
def test_a_traceback_holds_the_applications_frames_never_the_portals(tmp_path: Path, source: str) -> None:
    result = check_app(PORTAL_PYTHON, str(write_app(tmp_path, source)), "web", "app", "wsgi")
    assert not result.ok and result.traceback
    shown = "\n".join(result.traceback)
    assert "check_app.py" not in shown and "<frozen" not in shown, shown
    assert "web.py" in shown


def test_frames_of_the_check_script_are_taken_out_of_an_interpreters_own_traceback() -> None:
    # What a Python that fails before check_app.py answers prints on stderr.
    lines = ["Traceback (most recent call last):",
             f'  File "{CHECK_SCRIPT}", line 86, in main',
             "    __import__(module_name)",
             "    ^^^^^^^^^^^^^^^^^^^^^^^",
             '  File "/srv/app/web.py", line 3, in <module>',
             "    crash()",
             "RuntimeError: boom"]
    assert without_check_frames(lines) == [lines[0], *lines[4:]]


def test_a_missing_callable_lists_what_is_there(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "def application(environ, start_response):\n    return []\n")
    result = check_app(PORTAL_PYTHON, str(folder), "web", "app", "wsgi")
    assert not result.ok and result.code == "callable-missing"
    assert "has no 'app'" in result.message and "application" in result.message


def test_a_class_or_a_value_is_not_an_application(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "class App:\n    def __call__(self, environ, start_response):\n        return []\n"
                                 "NAME = 'x'\n")
    cls = check_app(PORTAL_PYTHON, str(folder), "web", "App", "wsgi")
    assert not cls.ok and cls.code == "not-an-app" and "give the instance" in cls.message
    value = check_app(PORTAL_PYTHON, str(folder), "web", "NAME", "wsgi")
    assert not value.ok and value.code == "not-callable" and "is a str" in value.message


def test_an_import_that_hangs_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "import time\ntime.sleep(60)\napp = None\n")
    started = time.monotonic()
    result = check_app(PORTAL_PYTHON, str(folder), "web", "app", "wsgi", timeout=1.5)
    took = time.monotonic() - started
    assert not result.ok and result.code == "timeout"
    assert "did not finish within 1.5 s" in result.message
    assert took < 5, took


def test_an_interpreter_that_does_not_exist_is_named(tmp_path: Path) -> None:
    result = check_app(str(tmp_path / "nopython"), str(tmp_path), "web", "app", "wsgi")
    assert not result.ok and result.code == "python-failed" and "nopython" in result.message


def test_the_check_script_does_not_shadow_the_apps_modules(tmp_path: Path) -> None:
    # An application module named like a module beside check_app.py (engines, venvs) is the app's own.
    folder = write_app(tmp_path, "def app(environ, start_response):\n    return []\n", "engines.py")
    result = check_app(PORTAL_PYTHON, str(folder), "engines", "app", "wsgi")
    assert result.ok and result.kind == "wsgi", result
