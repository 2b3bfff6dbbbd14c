"""Every field's bad input is refused with a message that says what is wrong and how to fix it."""

from __future__ import annotations

import os
import sys

import pytest

from portal import paths
from webapps.forms import WebAppForm
from webapps.models import WebApp
from webapps.tests.webapp_factories import (
    ASGI_APP,
    WSGI_APP,
    app_dir,
    bare_python,
    flask_example,
    form_data,
    make_webapp,
    portal_python_lacks,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def folder(tmp_path):
    return app_dir(tmp_path)


def errors_for(folder, instance=None, **overrides) -> dict[str, str]:
    form = WebAppForm(form_data(folder, **overrides), instance=instance)
    form.is_valid()
    return {field: " ".join(errors) for field, errors in form.errors.items()}


def test_a_valid_definition_passes_and_gets_the_defaults(folder):
    form = WebAppForm(form_data(folder, callable="", python_executable="", engine=""))
    assert form.is_valid(), form.errors
    webapp = form.save()
    # No interpreter named: the portal's own, kept empty (so an export moves to another host) and
    # resolved where it runs.
    assert (webapp.name, webapp.callable, webapp.python_executable) == ("/hello", "app", "")
    assert webapp.interpreter == sys.executable and webapp.requirements == ""
    assert webapp.engine_name == "gunicorn"


# The path -----------------------------------------------------------------------


@pytest.mark.parametrize("given, stored", [
    ("/flask", "/flask"), ("flask", "/flask"), ("/flask/", "/flask"), ("/shop/api.v2", "/shop/api.v2"),
    ("/a~b/c-d_e.f", "/a~b/c-d_e.f"), (" /Flask ", "/Flask"),
])
def test_a_path_is_normalised(folder, given, stored):
    form = WebAppForm(form_data(folder, name=given))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["name"] == stored


@pytest.mark.parametrize("path, words", [
    ("/", "/ alone cannot be an application's path"),
    ("", "A path is required"),
    ("/a//b", "has an empty segment (//)"),
    ("/a/../b", "has a “..” segment"),
    ("/a/./b", "has a “.” segment"),
    ("/fl ask", "has characters a path cannot have ( )"),
    ("/flask?x=1", "has characters a path cannot have (=?)"),
    ("/ü", "has characters a path cannot have (ü)"),
    ("/a/-/b", "only “-”"),
    ("/" + "a" * 250, "at most 200 characters (this one has 251)"),
])
def test_a_bad_path_is_refused(folder, path, words):
    assert words in errors_for(folder, name=path)["name"]


def test_a_path_another_application_uses_is_refused_naming_it(folder):
    make_webapp(folder, name="/Flask")
    assert "already used by the application /Flask" in errors_for(folder, name="/flask/")["name"]


def test_a_path_of_the_portals_own_pages_is_fine(folder):
    # The applications are served on their own port: /admin there is not the portal's admin.
    assert "name" not in errors_for(folder, name="/admin")


def test_a_path_inside_another_is_allowed_with_a_warning(folder):
    make_webapp(folder, name="/shop")
    form = WebAppForm(form_data(folder, name="/shop/api"))
    assert form.is_valid(), form.errors
    assert "/shop/api is inside /shop" in form.field_warnings["name"][0]


def test_the_path_cannot_change_once_saved(folder):
    webapp = make_webapp(folder)
    form = WebAppForm(form_data(folder, name="/other"), instance=webapp)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["name"] == "/hello"


# Directory, module, callable -------------------------------------------------------


def test_a_relative_directory_is_refused(folder):
    assert "full path, e.g. /srv/flask" in errors_for(folder, directory="app")["directory"]


def test_a_missing_directory_is_refused(folder, tmp_path):
    assert "does not exist on this host" in errors_for(folder, directory=str(tmp_path / "nope"))["directory"]


def test_a_file_as_directory_is_refused(folder):
    assert "is a file, not a folder" in errors_for(folder, directory=str(folder / "hello.py"))["directory"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder: run the suite as a normal user")
def test_an_unreadable_directory_is_refused(folder, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    assert "cannot be read by the portal's user" in errors_for(folder, directory=str(locked))["directory"]


def test_a_directory_is_required(folder):
    assert "The application directory is required" in errors_for(folder, directory="")["directory"]


@pytest.mark.parametrize("module, words", [
    ("app.py", "Write the module without .py: app."),
    ("mysite/wsgi.py", "Write the module without .py: mysite.wsgi."),
    ("mysite/wsgi", "named with dots, relative to the application directory: mysite.wsgi"),
    ("app:app", "names a callable too: put app here and app in Callable name"),
    ("1app", "is not a Python module"),
    ("my-site", "is not a Python module"),
    ("class", "is not a Python module"),
    ("", "The application module is required"),
])
def test_a_bad_module_is_refused(folder, module, words):
    assert words in errors_for(folder, module=module)["module"]


def test_a_dotted_module_passes(folder):
    (folder / "mysite").mkdir()
    (folder / "mysite" / "__init__.py").write_text("")
    (folder / "mysite" / "wsgi.py").write_text("def application(e, s):\n    return []\n")
    assert errors_for(folder, module="mysite.wsgi", callable="application") == {}


@pytest.mark.parametrize("name", ["app()", "my app", "9lives", "app.", "lambda"])
def test_a_bad_callable_is_refused(folder, name):
    assert "is not a Python callable name" in errors_for(folder, callable=name)["callable"]


# Interpreter or requirements ----------------------------------------------------------


def test_a_missing_interpreter_is_refused(folder):
    assert "does not exist" in errors_for(folder, python_executable="/nonexistent/python3")["python_executable"]


def test_a_relative_interpreter_is_refused(folder):
    assert "full path of the Python executable" in errors_for(folder, python_executable="python3")[
        "python_executable"]


def test_a_folder_as_interpreter_is_refused(folder):
    assert "is not an executable file" in errors_for(folder, python_executable="/usr/bin")["python_executable"]


def test_an_interpreter_and_a_requirements_file_together_are_refused(folder):
    requirements = folder / "requirements.txt"
    requirements.write_text("flask\n")
    errors = errors_for(folder, python_executable=sys.executable, requirements_file=str(requirements))
    assert "either a Python executable or a requirements file, not both" in errors["requirements_file"]


def test_a_requirements_file_alone_passes_and_the_import_waits_for_the_virtualenv(folder):
    requirements = folder / "requirements.txt"
    requirements.write_text("flask\n")
    form = WebAppForm(form_data(folder, requirements_file=str(requirements)))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["python_executable"] == ""
    assert "once the application's virtualenv is built" in form.field_warnings["module"][0]


def built_venv(webapp: WebApp, requirements) -> None:
    """The application's virtualenv as a finished build leaves it (a real venv, its stamp, current),
    made without pip: it needs no package for a module without imports."""
    import json
    import subprocess

    from webapps import adapter
    from webapps.runtime import venvs

    root = adapter.venv_root(webapp)
    target = root / "env-test"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    digest = venvs.venv_hash(requirements.read_bytes(), webapp.engine_name, venvs.python_identity(sys.executable))
    (target / venvs.STAMP_FILE).write_text(json.dumps({"hash": digest}))
    (root / venvs.CURRENT).symlink_to(target.name)


def test_once_the_virtualenv_is_built_an_edit_runs_the_import_check_with_it(tmp_path):
    folder = app_dir(tmp_path, "raise ImportError('flask is not installed')\n")
    requirements = folder / "requirements.txt"
    requirements.write_text("flask\n")
    webapp = make_webapp(folder, python_executable="", requirements_file=str(requirements))
    assert "module" not in errors_for(folder, instance=webapp, python_executable="",
                                      requirements_file=str(requirements))
    built_venv(webapp, requirements)
    form = WebAppForm(form_data(folder, python_executable="", requirements_file=str(requirements)), instance=webapp)
    assert not form.is_valid()
    assert "flask is not installed" in " ".join(form.errors["module"])
    assert "module" not in form.field_warnings
    (folder / "hello.py").write_text(WSGI_APP)
    form = WebAppForm(form_data(folder, python_executable="", requirements_file=str(requirements)), instance=webapp)
    assert form.is_valid(), form.errors
    assert not form.warnings
    # A changed file: the virtualenv is stale, the check waits for the rebuild again.
    requirements.write_text("flask\nrequests\n")
    form = WebAppForm(form_data(folder, python_executable="", requirements_file=str(requirements)), instance=webapp)
    assert form.is_valid() and "is built" in form.field_warnings["module"][0]


@pytest.mark.parametrize("kind, words", [("missing", "is not there"), ("folder", "is a folder"),
                                         ("relative", "full path")])
def test_a_bad_requirements_file_is_refused(folder, kind, words):
    value = {"missing": str(folder / "nope.txt"), "folder": str(folder), "relative": "requirements.txt"}[kind]
    assert words in errors_for(folder, requirements_file=value)["requirements_file"]


# Engine, workers, threads ---------------------------------------------------------------


def test_gunicorn_refuses_an_asgi_application_and_says_so(tmp_path):
    folder = app_dir(tmp_path, ASGI_APP)
    message = errors_for(folder, protocol="asgi", engine="gunicorn")["engine"]
    assert "gunicorn serves only WSGI applications and this one is ASGI" in message
    assert "choose uvicorn or granian (granian serves both)" in message


def test_uvicorn_refuses_a_wsgi_application_and_says_so(folder):
    message = errors_for(folder, protocol="wsgi", engine="uvicorn")["engine"]
    assert "uvicorn serves only ASGI applications and this one is WSGI: choose gunicorn or granian" in message


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_granian_serves_both(tmp_path, protocol):
    folder = app_dir(tmp_path, ASGI_APP if protocol == "asgi" else WSGI_APP)
    assert errors_for(folder, protocol=protocol, engine="granian") == {}


def test_the_default_engine_follows_the_protocol(tmp_path):
    webapp = WebAppForm(form_data(app_dir(tmp_path, ASGI_APP), protocol="asgi"))
    assert webapp.is_valid(), webapp.errors
    assert webapp.save().engine_name == "uvicorn"


@pytest.mark.parametrize("field, value, words", [
    ("workers", "0", "0 is out of range: give 1 to 32 worker processes"),
    ("workers", "33", "33 is out of range: give 1 to 32 worker processes"),
    ("workers", "many", "Enter a whole number from 1 to 32"),
    ("threads", "65", "65 is out of range: give 1 to 64 threads per worker"),
    ("threads", "-1", "out of range"),
    ("init_timeout", "1", "1 is out of range: give 2 to 300 seconds"),
    ("stop_timeout", "301", "301 is out of range: give 1 to 300 seconds"),
    ("stop_timeout", "1e309", "Enter a whole number from 1 to 300"),
])
def test_numbers_out_of_bounds_are_refused(folder, field, value, words):
    assert words in errors_for(folder, **{field: value})[field]


def test_threads_do_not_apply_to_asgi(tmp_path):
    folder = app_dir(tmp_path, ASGI_APP)
    assert "threads do not apply: set threads to 1" in errors_for(folder, protocol="asgi", threads="4")["threads"]


def test_an_unknown_engine_or_protocol_is_refused(folder):
    errors = errors_for(folder, engine="waitress", protocol="cgi")
    assert "engine" in errors and "protocol" in errors


# Environment ------------------------------------------------------------------------------


def test_environment_lines_become_variables(folder):
    form = WebAppForm(form_data(folder, environment="# the database\nAPP_DB_PATH=/srv/db.sqlite3\n\nX=a=b\n",
                                secret_environment="TOKEN=s3cret"))
    assert form.is_valid(), form.errors
    webapp = form.save()
    assert webapp.environment == {"APP_DB_PATH": "/srv/db.sqlite3", "X": "a=b"}
    assert webapp.secret_environment == {"TOKEN": "s3cret"}


@pytest.mark.parametrize("text, words", [
    ("JUSTANAME", "Line 1 (“JUSTANAME”) has no “=”: write one variable per line as NAME=value"),
    ("1X=a", "“1X” is not a variable name"),
    ("MY-VAR=a", "“MY-VAR” is not a variable name"),
    ("A=1\nA=2", "A is given twice (line 2)"),
    ("SCRIPT_NAME=/x", "SCRIPT_NAME is set by the portal (SCRIPT_NAME to the application's path"),
    ("WEBAPP_TARGET=x:y", "WEBAPP_TARGET is set by the portal"),
    ("BIG=" + "x" * 5000, "The value of BIG has 5000 characters, more than 4096"),
])
def test_bad_environment_lines_are_refused(folder, text, words):
    assert words in errors_for(folder, environment=text)["environment"]
    # A secret line without "=" may be a value typed alone: its message does not quote it.
    secret_words = words.replace(" (“JUSTANAME”)", "")
    assert secret_words in errors_for(folder, secret_environment=text)["secret_environment"]


def test_a_variable_both_plain_and_secret_is_refused(folder):
    errors = errors_for(folder, environment="TOKEN=a", secret_environment="TOKEN=b")
    assert "TOKEN is given as a plain and as a secret variable" in errors["secret_environment"]


def test_a_new_secret_needs_a_value(folder):
    assert "TOKEN has no value" in errors_for(folder, secret_environment="TOKEN=")["secret_environment"]


def test_the_edit_form_never_holds_a_secrets_value(folder):
    webapp = make_webapp(folder, secret_environment={"TOKEN": "s3cret-value"})
    html = str(WebAppForm(instance=webapp))
    assert "s3cret-value" not in html
    assert "TOKEN=" in html


def test_leaving_a_secret_blank_on_edit_keeps_it_and_removing_the_line_removes_it(folder):
    webapp = make_webapp(folder, secret_environment={"TOKEN": "s3cret", "OLD": "x"})
    form = WebAppForm(form_data(folder, secret_environment="TOKEN=\nNEW=n"), instance=webapp)
    assert form.is_valid(), form.errors
    assert form.save().secret_environment == {"TOKEN": "s3cret", "NEW": "n"}


# Static files and the log file ------------------------------------------------------------------


def test_static_mappings_are_normalised(folder):
    (folder / "static").mkdir()
    form = WebAppForm(form_data(folder, static_files=f"static/={folder}/static/"))
    assert form.is_valid(), form.errors
    assert form.save().static_files == {"/static": f"{folder}/static"}


@pytest.mark.parametrize("line, words", [
    ("/static", "has no “=”: write one mapping per line as /static=/srv/app/static"),
    ("/static=static", "must be a full path"),
    ("/static=/nonexistent/dir", "does not exist or cannot be read"),
    ("/../x=/tmp", "The static sub-path “/../x” is not usable"),
    ("/=/tmp", "The static sub-path “/” is not usable"),
])
def test_bad_static_mappings_are_refused(folder, line, words):
    assert words in errors_for(folder, static_files=line)["static_files"]


def test_a_log_file_outside_the_log_folders_is_refused(folder):
    assert "outside the log folders" in errors_for(folder, log_file="/tmp/app.log")["log_file"]


def test_a_relative_log_file_is_refused(folder):
    assert "full path" in errors_for(folder, log_file="app.log")["log_file"]


def test_another_applications_default_log_is_refused(folder):
    other = paths.LOG_DIR.resolve() / "webapps" / "other.log"
    assert "holds each web application's default log" in errors_for(folder, log_file=str(other))["log_file"]


def test_a_gateways_log_folder_is_refused(folder):
    path = paths.LOG_DIR.resolve() / "gateways" / "PyGate.log"
    assert "each gateway's default log" in errors_for(folder, log_file=str(path))["log_file"]


@pytest.mark.parametrize("field", ["log_file", "directory", "python_executable", "requirements_file"])
def test_a_path_with_a_name_too_long_for_the_file_system_is_refused_with_a_message(folder, admin_client_, field):
    # Over 255 bytes in one component, os.stat and Path.exists raise ENAMETOOLONG instead of answering.
    path = str(paths.LOG_DIR.resolve() / ("x" * 300 + ".log"))
    overrides = {field: path, "python_executable": ""} if field == "requirements_file" else {field: path}
    message = errors_for(folder, **overrides).get(field, "")
    assert "too long" in message, message
    response = admin_client_.post("/webapps/-/validate/", form_data(folder, **overrides),
                                  headers={"HX-Request": "true", "HX-Trigger-Name": field})
    assert response.status_code == 200 and "too long" in response.content.decode()
    response = admin_client_.post("/webapps/-/new/", form_data(folder, **overrides))
    assert response.status_code == 200 and "too long" in response.content.decode()
    assert not WebApp.objects.exists()


def test_a_new_log_file_in_var_log_passes(folder):
    assert "log_file" not in errors_for(folder, log_file=str(paths.LOG_DIR.resolve() / "hello-app.log"))


def test_defaults_fill_blank_numbers_and_choices(folder):
    form = WebAppForm(form_data(folder, workers="", threads="", init_timeout="", stop_timeout="", protocol="",
                                restart_policy=""))
    assert form.is_valid(), form.errors
    webapp = form.save()
    # Two workers, so that a reload loses no request; two threads each for WSGI.
    assert (webapp.workers, webapp.threads, webapp.init_timeout, webapp.stop_timeout) == (2, 2, 30, 10)
    assert (webapp.protocol, webapp.restart_policy) == (WebApp.Protocol.WSGI, "on-failure")


def test_an_asgi_application_left_at_the_defaults_gets_one_thread_per_worker(folder):
    (folder / "asgi.py").write_text(ASGI_APP)
    form = WebAppForm(form_data(folder, name="/a", module="asgi", protocol="asgi", workers="", threads=""))
    assert form.is_valid(), form.errors
    assert (form.save().workers, form.instance.threads) == (2, 1)


def test_the_new_form_offers_two_workers_and_leaves_threads_to_the_protocol(admin_client_):
    page = admin_client_.get("/webapps/-/new/").content.decode()
    assert 'name="workers" value="2"' in page
    assert 'placeholder="2 for WSGI, 1 for ASGI"' in page and 'name="threads" value=' not in page
    assert "a reload or a crashed worker loses no request" in page


def test_an_existing_definition_keeps_its_workers_and_threads(folder):
    webapp = make_webapp(folder, workers=1, threads=1)
    form = WebAppForm(WebAppForm(instance=webapp).as_data(), instance=webapp)
    assert form.is_valid(), form.errors
    assert (form.save().workers, webapp.threads) == (1, 1)


# The import check, in the application's own interpreter ------------------------------------


def test_a_module_that_does_not_exist_is_refused(folder):
    message = errors_for(folder, module="nothere")["module"]
    assert "nothere" in message


def test_a_module_that_fails_to_import_shows_the_end_of_the_traceback(tmp_path):
    folder = app_dir(tmp_path, "import json\n\ndef helper():\n    raise RuntimeError('no database configured')\n\n"
                               "helper()\n")
    message = errors_for(folder)["module"]
    assert "The end of the traceback:" in message
    assert "RuntimeError: no database configured" in message


def test_a_missing_callable_is_refused(folder):
    assert "application" in errors_for(folder, callable="application")["callable"]


def test_a_wsgi_application_declared_asgi_is_refused(folder):
    message = errors_for(folder, protocol="asgi", engine="granian")["protocol"]
    assert "WSGI" in message and "ASGI" in message


def test_an_asgi_application_declared_wsgi_is_refused(tmp_path):
    folder = app_dir(tmp_path, ASGI_APP)
    message = errors_for(folder, protocol="wsgi")["protocol"]
    assert "ASGI" in message


def test_the_application_sees_its_environment_during_the_check(tmp_path):
    folder = app_dir(tmp_path, "import os\nassert os.environ['APP_MODE'] == 'x', 'APP_MODE is not set'\n"
                               "assert os.environ['TOKEN'] == 's', 'TOKEN is not set'\n" + WSGI_APP)
    assert "APP_MODE is not set" in errors_for(folder)["module"]
    assert errors_for(folder, environment="APP_MODE=x", secret_environment="TOKEN=s") == {}


def test_an_import_that_hangs_is_stopped_by_the_timeout(tmp_path, monkeypatch):
    import time

    from webapps import forms

    monkeypatch.setattr(forms, "APP_CHECK_TIMEOUT", 1.0)
    folder = app_dir(tmp_path, "import time\ntime.sleep(30)\n" + WSGI_APP)
    started = time.monotonic()
    message = errors_for(folder)["module"]
    assert time.monotonic() - started < 5
    assert "did not finish within 1 s" in message


def test_another_interpreter_runs_the_check(folder, tmp_path):
    # An interpreter without the application's needs: the check is that interpreter's answer.
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'this is not python' >&2\nexit 3\n")
    broken.chmod(0o755)
    message = errors_for(folder, python_executable=str(broken))["python_executable"]
    assert "this is not python" in message


@pytest.mark.parametrize("where", ["/", "var", "var/log", "link"])
def test_a_static_folder_that_would_serve_the_portals_private_files_is_refused(folder, tmp_path, where):
    var = paths.VAR_DIR
    target = {"/": "/", "var": str(var), "var/log": str(var / "log")}.get(where)
    if where == "link":
        link = tmp_path / "innocent-looking"
        link.symlink_to(var.parent)
        target = str(link)
    message = errors_for(folder, static_files=f"/static={target}")["static_files"]
    assert f"the portal's private folder {var}" in message
    assert "anyone who reaches the applications' port could read them" in message


def test_no_interpreter_and_a_folder_with_requirements_txt_uses_that_file_and_says_so(tmp_path):
    # The trial's case: the Flask example, no requirements file, no interpreter (the portal's has no
    # Flask). As a PaaS does, the folder's requirements.txt is used; the form says so.
    portal_python_lacks("flask")
    folder = flask_example(tmp_path)
    form = WebAppForm(form_data(folder, name="/flask", module="app", python_executable=""))
    assert form.is_valid(), form.errors
    assert form.field_warnings["requirements_file"] == [
        f"No interpreter or requirements file is given, and the application directory has {folder}/requirements.txt: "
        "the portal builds the application's own virtualenv from it at its start (and again whenever the file "
        "changes). To run it with an interpreter of your own instead, give a Python executable."]
    webapp = form.save()
    assert (webapp.python_executable, webapp.requirements_file) == ("", "")
    assert webapp.found_requirements == webapp.requirements == f"{folder}/requirements.txt"


def test_without_its_requirements_txt_the_portals_interpreter_is_checked_and_named(tmp_path):
    python = portal_python_lacks("flask")
    folder = flask_example(tmp_path)
    (folder / "requirements.txt").unlink()
    errors = errors_for(folder, name="/flask", module="app", python_executable="")
    assert errors == {"python_executable": (
        f"{python} lacks the package 'flask' that app.py imports: give a requirements file that lists it or a "
        "Python executable that has flask.")}


def test_a_named_interpreter_is_not_replaced_by_the_folders_requirements_txt(tmp_path):
    folder = flask_example(tmp_path)
    form = WebAppForm(form_data(folder, name="/flask", module="app", python_executable=bare_python(tmp_path)))
    assert not form.is_valid()
    assert "requirements_file" not in form.field_warnings


def test_a_given_interpreter_without_the_package_and_no_requirements_txt_is_named_on_its_field(tmp_path):
    python = bare_python(tmp_path)
    folder = flask_example(tmp_path)
    (folder / "requirements.txt").unlink()
    errors = errors_for(folder, name="/flask", module="app", python_executable=python)
    assert errors == {"python_executable": (
        f"{python} lacks the package 'flask' that app.py imports: give a requirements file that lists it or a "
        "Python executable that has flask.")}


def test_a_virtualenv_built_without_the_package_says_to_add_it_to_the_requirements_file(tmp_path):
    folder = app_dir(tmp_path, "import flask\napp = flask.Flask(__name__)\n")
    requirements = folder / "requirements.txt"
    requirements.write_text("requests\n")
    webapp = make_webapp(folder, python_executable="", requirements_file=str(requirements))
    built_venv(webapp, requirements)
    errors = errors_for(folder, instance=webapp, python_executable="", requirements_file=str(requirements))
    assert "lacks the package 'flask' that hello.py imports: the virtualenv is built from " \
           f"{requirements}; add the package that provides flask to it." in errors["requirements_file"]


def test_an_import_error_shows_the_applications_frames_only(tmp_path):
    folder = app_dir(tmp_path, "raise RuntimeError('no database')\n")
    message = errors_for(folder)["module"]
    assert message.startswith("Importing hello failed: RuntimeError: no database. The end of the traceback: ")
    assert "hello.py\", line 1, in <module>" in message
    assert "check_app.py" not in message and "frozen" not in message
