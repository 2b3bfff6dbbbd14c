"""The import check sees what the engine will see, and its messages keep code as written.

Real interpreters and a real engine: the plugin test serves the application with gunicorn (the
portal's interpreter has it) under a keeper, as the portal does, after the form's check passed it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from webapps.forms import WebAppForm
from webapps.runtime.engines import AppRun
from webapps.tests.runtime_helpers import short_dir, started, wait_for_answer
from webapps.tests.webapp_factories import app_dir, form_data

pytestmark = pytest.mark.django_db

# A plugin registered by a .pth file on the application's PYTHONPATH, which a sitecustomize there
# makes Python read (site.addsitedir): what an application's engine runs when it starts.
REGISTRY = "names = []\n"
SITECUSTOMIZE = "import os, site\nsite.addsitedir(os.path.dirname(os.path.abspath(__file__)))\n"
PTH = "import plugins; plugins.names.append('greeting')\n"
PLUGGED_APP = '''\
import plugins

if "greeting" not in plugins.names:
    raise RuntimeError("the greeting plugin is not registered")


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("plugins: " + ",".join(plugins.names)).encode()]
'''


def plugged_app(base: Path) -> tuple[Path, Path]:
    """(the application's folder, the folder its PYTHONPATH names)."""
    lib = base / "lib"
    lib.mkdir(parents=True)
    (lib / "plugins.py").write_text(REGISTRY)
    (lib / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (lib / "greeting.pth").write_text(PTH)
    folder = base / "app"
    folder.mkdir()
    (folder / "web.py").write_text(PLUGGED_APP)
    return folder, lib


def errors_for(folder, **overrides) -> dict[str, str]:
    form = WebAppForm(form_data(folder, **overrides))
    form.is_valid()
    return {field: " ".join(errors) for field, errors in form.errors.items()}


def test_an_application_whose_plugin_registers_through_its_pythonpath_passes_and_is_served(tmp_path: Path) -> None:
    folder, lib = plugged_app(tmp_path)
    python = sys.executable  # the portal's, which has gunicorn (and other users may run)
    # The form's check, as the page's Save runs it.
    assert errors_for(folder, module="web", python_executable=python, environment=f"PYTHONPATH={lib}") == {}
    # The engine serves it, so the check was right to pass it.
    run = short_dir("plugin")  # the socket's path must fit a unix socket address
    try:
        app = AppRun(mount="/plugged", directory=str(folder), module="web", socket=str(run / "app.sock"),
                     python=python, env={"PYTHONPATH": str(lib)})
        with started(app, run / "run") as running:
            wait_for_answer(running, "/", "plugins: greeting", timeout=30)
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_the_portals_own_environment_does_not_reach_the_check(tmp_path: Path, monkeypatch) -> None:
    # The portal's PYTHONPATH names the plugin's folder: the application's does not, so its check
    # must not see it (nor any other variable of the portal's), as its engine would not.
    folder, lib = plugged_app(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(lib))
    monkeypatch.setenv("PYTHONSTARTUP", str(lib / "sitecustomize.py"))
    errors = errors_for(folder, module="web")
    assert "lacks the package 'plugins' that web.py imports" in errors["python_executable"], errors


def test_messages_keep_the_applications_names_as_written(tmp_path: Path) -> None:
    folder = app_dir(tmp_path, "import json\n\ndef app(environ, start_response):\n    return []\n")
    missing = errors_for(folder, callable="nothere")["callable"]
    assert missing.startswith("hello has no 'nothere'"), missing
    not_an_app = errors_for(folder, callable="json")["callable"]
    assert not_an_app.startswith("hello:json is a module, not an application"), not_an_app
    # A message that starts with words is still a sentence.
    assert errors_for(folder, module="gone")["module"].startswith("There is no module gone")


def test_a_program_that_is_not_python_is_named_so(tmp_path: Path) -> None:
    message = errors_for(app_dir(tmp_path), python_executable="/bin/ls")["python_executable"]
    assert message.startswith("/bin/ls is not a Python interpreter"), message
    assert "ended without an answer" not in message


def test_a_relative_requirements_file_is_refused_naming_the_full_path_it_means(tmp_path: Path) -> None:
    project = tmp_path / "portal"
    folder = project / "examples" / "webapps" / "flaskapp"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text("def app(environ, start_response):\n    return []\n")
    (folder / "requirements.txt").write_text("flask\n")
    # As the README's tour wrote it (relative to the project), and as a person in the folder would.
    for given in ("examples/webapps/flaskapp/requirements.txt", "requirements.txt"):
        errors = errors_for(folder, module="app", requirements_file=given)
        assert errors["requirements_file"] == (f"Give the requirements file's full path, e.g. "
                                               f"{folder / 'requirements.txt'}, not “{given}”.")
    # A file that is nowhere near: the example is where it would be.
    errors = errors_for(folder, module="app", requirements_file="elsewhere/reqs.txt")
    assert f"e.g. {folder / 'requirements.txt'}, not “elsewhere/reqs.txt”" in errors["requirements_file"]


def test_the_readme_tour_gives_full_paths_for_the_first_application() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    tour = readme[readme.index("### Web applications"):]
    first = tour[:tour.index("2. **Start**")]
    assert "requirements file `examples/webapps/flaskapp/requirements.txt`" not in first
    assert "/examples/webapps/flaskapp/requirements.txt`" in first


def test_the_command_names_its_real_options_in_the_forms_messages(tmp_path: Path) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    folder = app_dir(tmp_path)
    with pytest.raises(CommandError) as error:
        call_command("webapp", "create", "/hello", "--directory", str(folder), "--module", "hello",
                     "--python", "/bin/ls", "--workers", "0", "--type", "asgi", "--threads", "4",
                     stdout=StringIO(), stderr=StringIO())
    message = str(error.value)
    assert "--python: /bin/ls is not a Python interpreter" in message
    assert "--workers: 0 is out of range" in message
    assert "--threads: An ASGI application runs on one event loop per worker" in message
    assert "--python-executable" not in message and "--protocol" not in message


def test_each_field_is_named_by_the_option_that_sets_it() -> None:
    from processes.forms import options_of
    from webapps.management.commands.webapp import FILLED_BY, Command

    command = Command()
    command.create_parser("manage.py", "webapp")
    options = options_of(command.parsers["edit"], **FILLED_BY)
    assert options["python_executable"] == "--python" and options["protocol"] == "--type"
    assert options["requirements_file"] == "--requirements" and options["name"] == "PATH"
    assert options["debug"] == "--debug" and options["allow_root"] == "--allow-root"
    assert options["secret_environment"] == "--secret-env-file" and options["static_files"] == "--static"


def test_a_relative_directory_is_refused_naming_the_folder_it_means_in_the_portal_s_installation() -> None:
    from django.conf import settings

    # As the README's tour names the example, from the portal's own folder.
    errors = errors_for("examples/webapps/flaskapp", module="app")
    assert errors["directory"] == (f"Give the application directory's full path, e.g. "
                                   f"{settings.BASE_DIR / 'examples' / 'webapps' / 'flaskapp'}, "
                                   "not “examples/webapps/flaskapp”.")
    # A folder that is nowhere near: a typical full path.
    errors = errors_for("elsewhere/app", module="app")
    assert errors["directory"] == "Give the application directory's full path, e.g. /srv/flask, not “elsewhere/app”."
