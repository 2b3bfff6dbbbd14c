"""Merging web applications: the seed's CPF line, the portal's own keys, secrets from files,
running applications, the history, and the round trip export → empty portal → export."""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from portal.cli import CliOperator
from portal.cpf import merge
from portal.models import AuditEntry
from portal.process.states import RUNNING
from webapps.models import WebApp
from webapps.tests.webapp_factories import ASGI_APP, WSGI_APP, flask_example, make_webapp, portal_python_lacks

pytestmark = pytest.mark.django_db

SEED = ("[Actions]\r\n"
        "CreateApplication:Name=/flask,NameSpace=IRISAPP,WSGIAppLocation=/irisdev/app/community/,WSGIAppName=app,"
        "WSGICallable=app,Type=2,DispatchClass=%SYS.Python.WSGI,MatchRoles=:%ALL,WSGIDebug=0,WSGIType=0\r\n")


@pytest.fixture
def community(tmp_path: Path) -> Path:
    """The seed's /irisdev/app/community/ with its app.py, under tmp_path."""
    folder = tmp_path / "irisdev" / "app" / "community"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(WSGI_APP)
    return folder


def apply(text: str, **options):  # type: ignore[no-untyped-def]
    return merge.merge(text, CliOperator(), apply=True, **options)


def test_the_seeds_line_verbatim_names_its_missing_folder_and_changes_nothing():
    result = apply(SEED)
    assert not result.applied and WebApp.objects.count() == 0
    (problem,) = result.problems
    assert (problem.line, problem.key) == (2, "WSGIAppLocation")
    assert "/irisdev/app/community does not exist on this host" in problem.message


def test_the_seeds_line_creates_the_application_with_every_key_kept(community):
    result = apply(SEED.replace("/irisdev/app/community/", f"{community}/"))
    assert result.problems == [] and result.counts["created"] == 1
    app = WebApp.objects.get()
    assert (app.name, app.directory, app.module, app.callable) == ("/flask", str(community), "app", "app")
    assert (app.protocol, app.debug, app.namespace, app.match_roles) == ("wsgi", False, "IRISAPP", ":%ALL")
    entry = AuditEntry.objects.get()
    assert entry.action == "created" and entry.actor_name.endswith("(cpf merge)")
    assert entry.changes["namespace"]["after"] == "IRISAPP" and entry.changes["match_roles"]["after"] == ":%ALL"
    # Applied again: already as asked.
    assert apply(SEED.replace("/irisdev/app/community/", f"{community}/")).counts["unchanged"] == 1


def test_namespace_and_matchroles_are_shown_on_the_applications_page(community, admin_client_):
    apply(SEED.replace("/irisdev/app/community/", f"{community}/"))
    html = admin_client_.get("/webapps/flask/").content.decode()
    assert "NameSpace <code>IRISAPP</code>" in html and "MatchRoles <code>:%ALL</code>" in html
    assert "the portal has no namespaces or IRIS roles" in html


@pytest.mark.parametrize(("key", "value", "words"), [
    ("Type", "1", "is not a web application"),
    ("DispatchClass", "%CSP.REST", "is not a Python web application"),
    ("WSGIType", "3", "write one of 0, 1"),
    ("WSGIDebug", "true", "not 0 or 1"),
])
def test_values_the_portal_does_not_run_are_refused_by_key_and_line(community, key, value, words):
    line = SEED.replace("/irisdev/app/community/", f"{community}/").replace(
        {"Type": "Type=2", "DispatchClass": "DispatchClass=%SYS.Python.WSGI", "WSGIType": "WSGIType=0",
         "WSGIDebug": "WSGIDebug=0"}[key], f"{key}={value}")
    result = apply(line)
    assert WebApp.objects.count() == 0
    (problem,) = result.problems
    assert (problem.line, problem.key) == (2, key) and words in problem.message


def test_wsgitype_1_makes_an_asgi_application_and_the_forms_engine_rule_applies(community):
    (community / "app.py").write_text(ASGI_APP)
    text = f"[Actions]\nCreateApplication:Name=/fast,WSGIAppLocation={community},WSGIAppName=app,WSGIType=1\n"
    assert apply(text).problems == []
    assert WebApp.objects.get().protocol == "asgi"
    refused = apply(f"[Actions]\nCreateApplication:Name=/other,WSGIAppLocation={community},WSGIAppName=app,"
                    "WSGIType=1,Engine=gunicorn\n")
    assert refused.problems[0].key == "Engine" and "gunicorn serves only WSGI" in refused.problems[0].message


def test_env_static_and_secret_keys(community, tmp_path):
    static = community / "static"
    static.mkdir()
    secret = tmp_path / "db-password"
    secret.write_text("s3cret-value\n")
    text = (f"[Actions]\nCreateApplication:Name=/flask,WSGIAppLocation={community},WSGIAppName=app,"
            f"Env.APP_MODE=production,Env.URL=http://db/?a=b,Static./static={static},"
            f"SecretEnvFile.DB_PASSWORD={secret}\n")
    result = apply(text)
    assert result.problems == []
    app = WebApp.objects.get()
    assert app.environment == {"APP_MODE": "production", "URL": "http://db/?a=b"}
    assert app.static_files == {"/static": str(static)} and app.secret_environment == {"DB_PASSWORD": "s3cret-value"}
    assert "s3cret-value" not in str(result.as_dict()) + str(list(AuditEntry.objects.values()))
    assert ("SecretEnvFile.DB_PASSWORD", "", merge.CHANGED_SECRET) in result.of("created")[0].fields
    assert apply(text).counts["unchanged"] == 1
    # Modify with one Env key: the environment becomes exactly that; the secret stays.
    changed = apply("[Actions]\nModifyApplication:Name=/flask,Env.APP_MODE=debug\n")
    assert changed.of("modified")[0].fields == [("Env.APP_MODE", "production", "debug"), ("Env.URL", "http://db/?a=b", "")]
    app.refresh_from_db()
    assert app.environment == {"APP_MODE": "debug"} and app.secret_environment == {"DB_PASSWORD": "s3cret-value"}


def test_a_bad_env_name_is_refused_under_its_key(community):
    result = apply(f"[Actions]\nCreateApplication:Name=/flask,WSGIAppLocation={community},WSGIAppName=app,"
                   "Env.1BAD=x\n")
    assert result.problems[0].key == "Env.NAME" and "is not a variable name" in result.problems[0].message


def test_a_running_applications_runtime_fields_are_refused_without_restart(community):
    make_webapp(community, name="/flask", module="app", state=RUNNING, pid=os.getpid())
    result = apply("[Actions]\nModifyApplication:Name=/flask,Workers=3\n")
    assert result.problems[0].key == "Workers" and "is running: stop it first" in result.problems[0].message
    # NameSpace is no runtime field: it changes while the application runs.
    ok = apply("[Actions]\nModifyApplication:Name=/flask,NameSpace=USER\n")
    assert ok.problems == [] and WebApp.objects.get().namespace == "USER"


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("cpf", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_export_then_merge_into_an_empty_portal_then_export_gives_the_same_file(community, tmp_path):
    static = community / "static"
    static.mkdir()
    apply(f"[Actions]\nCreateApplication:Name=/flask,NameSpace=IRISAPP,MatchRoles=:%ALL,WSGIAppLocation={community},"
          f"WSGIAppName=app,WSGIDebug=1,Workers=2,Threads=4,Env.A=1,Env.B=\"x,y\",Static./static={static}\n"
          f"CreateApplication:Name=/b/api,WSGIAppLocation={community},WSGIAppName=app,Engine=granian\n")
    exported = run_command("export", "--applications")
    assert exported.count("CreateApplication:") == 2 and 'Env.B="x,y"' in exported
    WebApp.objects.all().delete()
    file = tmp_path / "apps.cpf"
    file.write_text(exported)
    assert "2 created" in run_command("merge", str(file))
    assert run_command("export", "--applications") == exported


def test_the_applications_list_links_to_the_merge_page_and_the_export(role_client):
    admin_page = role_client("administrator").get("/webapps/").content.decode()
    assert "/cpf/merge/" in admin_page and "/cpf/export/?kind=applications" in admin_page
    viewer_page = role_client("viewer").get("/webapps/").content.decode()
    assert "/cpf/merge/" not in viewer_page and "/cpf/export/?kind=applications" in viewer_page


def test_the_import_check_runs_in_the_applications_interpreter_and_names_its_key(community):
    (community / "broken.py").write_text("import a_module_that_is_not_installed\n")
    result = apply(f"[Actions]\nCreateApplication:Name=/ok,WSGIAppLocation={community},WSGIAppName=app\n"
                   f"CreateApplication:Name=/broken,WSGIAppLocation={community},WSGIAppName=broken\n"
                   f"CreateApplication:Name=/nocallable,WSGIAppLocation={community},WSGIAppName=app,"
                   f"WSGICallable=application\n")
    assert WebApp.objects.count() == 0
    assert [(p.line, p.key) for p in result.problems] == [(3, "PythonExecutable"), (4, "WSGICallable")]
    assert "lacks the package 'a_module_that_is_not_installed' that broken.py imports" in result.problems[0].message
    assert "add RequirementsFile=/path/to/requirements.txt" in result.problems[0].message


def test_the_seeds_line_for_the_flask_example_works_as_it_stands_with_the_folders_requirements_txt(tmp_path):
    # A fresh clone: the portal's interpreter has no Flask, and the seed's line names no interpreter
    # and no requirements file. The folder carries its requirements.txt: that is used, as a PaaS does.
    portal_python_lacks("flask")
    folder = flask_example(tmp_path)
    line = SEED.replace("/irisdev/app/community/", f"{folder}/")
    preview = merge.merge(line, CliOperator(), apply=False)
    assert preview.problems == []
    (change,) = preview.changes
    assert change.warnings == [
        f"No interpreter or requirements file is given, and the application directory has {folder}/requirements.txt: "
        "the portal builds the application's own virtualenv from it at its start (and again whenever the file "
        "changes). To run it with an interpreter of your own instead, give PythonExecutable=/path/to/python."]
    assert apply(line).problems == []
    app = WebApp.objects.get()
    assert (app.python_executable, app.requirements_file) == ("", "")
    assert app.requirements == f"{folder}/requirements.txt"
    # Exported, it names neither: it moves to another portal as it came.
    exported = run_command("export", "--applications")
    assert "PythonExecutable=," in exported and "RequirementsFile=," in exported


def test_without_a_requirements_txt_the_seeds_line_names_the_keys_to_add(tmp_path):
    python = portal_python_lacks("flask")
    folder = flask_example(tmp_path)
    (folder / "requirements.txt").rename(folder / "deps.txt")
    result = apply(SEED.replace("/irisdev/app/community/", f"{folder}/"))
    assert WebApp.objects.count() == 0
    (problem,) = result.problems
    assert (problem.line, problem.key) == (2, "PythonExecutable")
    assert problem.message == (
        f"{python} lacks the package 'flask' that app.py imports: add RequirementsFile=/path/to/requirements.txt "
        "(one that lists flask) or PythonExecutable=/path/to/python (an interpreter that has flask).")
    fixed = SEED.replace("/irisdev/app/community/", f"{folder}/").replace(
        "WSGIType=0", f"WSGIType=0,RequirementsFile={folder}/deps.txt")
    assert apply(fixed).problems == [] and WebApp.objects.get().requirements_file == f"{folder}/deps.txt"


def test_a_failing_import_shows_the_applications_traceback_without_the_portals_frames(community):
    (community / "app.py").write_text("raise KeyError('APP_SETTING')\n")
    (problem,) = apply(SEED.replace("/irisdev/app/community/", f"{community}/")).problems
    assert problem.key == "WSGIAppName" and "KeyError: 'APP_SETTING'" in problem.message
    assert "app.py" in problem.message and "check_app.py" not in problem.message
