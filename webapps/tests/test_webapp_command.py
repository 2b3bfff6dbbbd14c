"""manage.py webapp create|edit|list|show|delete: the form's checks, the roles, secrets kept out of sight."""

from __future__ import annotations

import json
import os
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal import paths
from portal.models import AuditEntry
from portal.roles import ADMINISTRATOR, OPERATOR, VIEWER
from webapps.models import WebApp
from webapps.tests.webapp_factories import ASGI_APP, app_dir, bare_python, flask_example, make_webapp

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("webapp", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def folder(tmp_path):
    return app_dir(tmp_path)


def test_create_with_every_option_then_list_and_show(folder, tmp_path):
    (folder / "static").mkdir()
    secrets = tmp_path / "secrets.env"
    secrets.write_text("API_TOKEN=t0ps3cret\n")
    out = run("create", "/hello/", "--directory", str(folder), "--module", "hello", "--callable", "app",
              "--type", "wsgi", "--python", sys.executable, "--debug", "--engine", "granian", "--workers", "2",
              "--threads", "8", "--env", "APP_MODE=demo", "--env", "APP_DB_PATH=/tmp/x.sqlite3",
              "--secret-env-file", str(secrets), "--static", f"/static={folder}/static",
              "--restart-policy", "always", "--init-timeout", "20", "--stop-timeout", "3")
    assert "Created web application /hello (hello:app, WSGI under granian)." in out
    webapp = WebApp.objects.get()
    assert (webapp.debug, webapp.workers, webapp.threads, webapp.engine) == (True, 2, 8, "granian")
    assert webapp.environment == {"APP_MODE": "demo", "APP_DB_PATH": "/tmp/x.sqlite3"}
    assert webapp.secret_environment == {"API_TOKEN": "t0ps3cret"}
    assert webapp.static_files == {"/static": f"{folder}/static"}
    assert "/hello" in run("list")
    shown = run("show", "hello")
    assert "API_TOKEN=(secret)" in shown and "t0ps3cret" not in shown
    data = json.loads(run("show", "/hello", "--json"))
    assert data["secret_environment"] == ["API_TOKEN"] and "t0ps3cret" not in json.dumps(data)
    assert json.loads(run("list", "--json"))[0]["path"] == "/hello"


def test_list_json_has_what_the_detail_page_shows(folder):
    make_webapp(folder, namespace="USER", match_roles=":%All")
    listed = json.loads(run("list", "--json"))[0]
    assert (listed["namespace"], listed["match_roles"], listed["state"]) == ("USER", ":%All", "stopped")


def test_bad_values_give_the_forms_messages_named_by_option(folder):
    with pytest.raises(CommandError) as error:
        run("create", "/a/../b", "--directory", str(folder), "--module", "hello.py", "--type", "asgi",
            "--engine", "gunicorn", "--workers", "99")
    text = str(error.value)
    assert "The web application was not created:" in text
    assert "PATH: “/a/../b” has a “..” segment" in text
    assert "--module: Write the module without .py: hello." in text
    assert "--workers: 99 is out of range: give 1 to 32 worker processes" in text
    assert WebApp.objects.count() == 0


def test_a_path_another_application_uses_is_refused_naming_it(folder):
    make_webapp(folder, name="/Hello")
    with pytest.raises(CommandError, match="already used by the application /Hello"):
        run("create", "/hello", "--directory", str(folder), "--module", "hello")


def test_the_import_check_runs_for_the_cli_too(tmp_path):
    folder = app_dir(tmp_path, ASGI_APP)
    with pytest.raises(CommandError, match=r"--type: .*declared WSGI"):
        run("create", "/hello", "--directory", str(folder), "--module", "hello")
    assert "Created" in run("create", "/hello", "--directory", str(folder), "--module", "hello", "--type", "asgi")
    assert WebApp.objects.get().engine_name == "uvicorn"


def test_an_interpreter_without_the_apps_package_names_the_options_that_give_it_one(tmp_path):
    python = bare_python(tmp_path)
    folder = flask_example(tmp_path)
    with pytest.raises(CommandError) as error:
        run("create", "/flask", "--directory", str(folder), "--module", "app", "--python", python)
    assert str(error.value) == (
        "The web application was not created:\n"
        f"  --requirements: {python} lacks the package 'flask' that app.py imports: add --requirements "
        f"{folder}/requirements.txt (this directory's requirements.txt) instead of --python, or --python "
        "/path/to/python (an "
        "interpreter that has flask).")
    assert WebApp.objects.count() == 0


def test_edit_changes_only_what_is_given_and_keeps_secrets(folder, tmp_path):
    make_webapp(folder, environment={"A": "1", "B": "2"}, secret_environment={"TOKEN": "keep-me", "OLD": "x"},
                python_executable=sys.executable)
    assert "Saved web application /hello." in run("edit", "/hello", "--env", "C=3", "--unset-env", "B",
                                                  "--unset-env", "OLD", "--workers", "3")
    webapp = WebApp.objects.get()
    assert webapp.environment == {"A": "1", "C": "3"}
    assert webapp.secret_environment == {"TOKEN": "keep-me"}
    assert webapp.workers == 3 and webapp.module == "hello"
    secrets = tmp_path / "s.env"
    secrets.write_text("TOKEN=new-value\n")
    run("edit", "/hello", "--secret-env-file", str(secrets), "--no-debug")
    assert WebApp.objects.get().secret_environment == {"TOKEN": "new-value"}


def test_the_history_records_secrets_only_as_changed(folder, tmp_path):
    secrets = tmp_path / "s.env"
    secrets.write_text("TOKEN=first-secret\n")
    run("create", "/hello", "--directory", str(folder), "--module", "hello", "--secret-env-file", str(secrets))
    secrets.write_text("TOKEN=second-secret\n")
    run("edit", "/hello", "--secret-env-file", str(secrets))
    entries = list(AuditEntry.objects.filter(object_type="webapp").order_by("at"))
    assert [e.action for e in entries] == ["created", "changed"]
    assert entries[1].changes == {"secret_environment": {"secret": True}}
    recorded = json.dumps([e.changes for e in entries])
    assert "first-secret" not in recorded and "second-secret" not in recorded
    assert entries[0].changes["secret_environment"] == {"secret": True}
    assert entries[0].actor_name.startswith("cli:")


def test_delete(folder):
    make_webapp(folder)
    assert "Deleted web application /hello." in run("delete", "hello")
    assert not WebApp.objects.exists()


def test_a_running_application_is_not_deleted_or_changed(folder):
    make_webapp(folder, state="running", pid=1)
    with pytest.raises(CommandError, match="stop /hello first, then delete it"):
        run("delete", "/hello")
    with pytest.raises(CommandError, match="stop /hello first, then change worker"):
        run("edit", "/hello", "--workers", "2")


def test_a_static_mapping_may_change_while_it_runs(folder):
    (folder / "static").mkdir()
    make_webapp(folder, state="running", pid=1, python_executable=sys.executable)
    run("edit", "/hello", "--static", f"static={folder}/static")
    assert WebApp.objects.get().static_files == {"/static": f"{folder}/static"}


@pytest.mark.parametrize("role, allowed", [(VIEWER, False), (OPERATOR, False), (ADMINISTRATOR, True)])
def test_only_an_administrator_defines(folder, make_user, role, allowed):
    make_user("someone", role)
    args = ["--user", "someone", "create", "/hello", "--directory", str(folder), "--module", "hello"]
    if allowed:
        assert "Created" in run(*args)
        assert AuditEntry.objects.get().actor_name == "someone"
    else:
        with pytest.raises(CommandError, match="Only an Administrator may create web application definitions"):
            run(*args)


def test_a_user_without_a_role_sees_nothing(folder, make_user):
    make_webapp(folder)
    make_user("nobody", None)
    with pytest.raises(CommandError, match="has no role"):
        run("--user", "nobody", "show", "/hello")


def test_an_unknown_path_or_user_says_what_to_do(folder):
    with pytest.raises(CommandError, match="There is no web application at '/nope'"):
        run("show", "/nope")
    with pytest.raises(CommandError, match="no active portal user named 'ghost'"):
        run("--user", "ghost", "list")


def test_an_env_option_without_equals_is_refused(folder):
    with pytest.raises(CommandError, match="--env 'JUSTNAME' has no '='"):
        run("create", "/hello", "--directory", str(folder), "--module", "hello", "--env", "JUSTNAME")


def test_relative_paths_are_taken_from_where_the_command_runs(folder, monkeypatch):
    (folder / "static").mkdir()
    monkeypatch.chdir(folder.parent)
    # The python3 found first is one the application's own user may run (not pyenv's under /root).
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    run("create", "/hello", "--directory", "app", "--module", "hello", "--python", "python3",
        "--static", "/static=app/static")
    webapp = WebApp.objects.get()
    assert webapp.directory == str(folder)
    assert webapp.python_executable.startswith("/") and webapp.python_executable.endswith("python3")
    assert webapp.static_files == {"/static": str(folder / "static")}


@pytest.mark.parametrize("option", ["--log-file", "--directory", "--python", "--secret-env-file"])
def test_a_path_with_a_name_too_long_is_refused_without_a_traceback(folder, option):
    long_path = str(paths.LOG_DIR.resolve() / ("x" * 300))
    args = {"--directory": str(folder), "--log-file": "", "--python": "", "--secret-env-file": ""}
    args[option] = long_path
    argv = ["create", "/hello", "--module", "hello", *[a for k, v in args.items() if v for a in (k, v)]]
    with pytest.raises(CommandError) as error:
        run(*argv)
    assert "too long" in str(error.value), str(error.value)
    assert not WebApp.objects.exists()


def test_show_says_what_runs_a_definition_that_names_no_interpreter(folder):
    import json

    (folder / "requirements.txt").write_text("# nothing\n")
    make_webapp(folder, python_executable="")
    shown = json.loads(run("show", "/hello", "--json"))
    assert (shown["python_executable"], shown["requirements_file"]) == ("", "")
    assert shown["requirements"] == f"{folder}/requirements.txt"
    assert shown["interpreter"].endswith("/venvs/current/bin/python")
    (folder / "requirements.txt").unlink()
    shown = json.loads(run("show", "/hello", "--json"))
    assert (shown["requirements"], shown["interpreter"]) == ("", sys.executable)
