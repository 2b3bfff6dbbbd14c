"""The Web applications pages: list, detail, create, edit, delete and the inline checks, by every role."""

from __future__ import annotations

import pytest
from django.test import override_settings

from conftest import ROLES
from portal.models import AuditEntry
from webapps.models import WebApp
from webapps.tests.webapp_factories import app_dir, flask_example, form_data, make_webapp, portal_python_lacks

pytestmark = pytest.mark.django_db


@pytest.fixture
def folder(tmp_path):
    return app_dir(tmp_path)


def test_the_menu_names_web_applications(role_client):
    html = role_client("viewer").get("/").content.decode()
    assert 'href="/webapps/"' in html and "Web applications" in html


def test_anonymous_is_sent_to_the_login_page(client):
    response = client.get("/webapps/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/webapps/")


def test_a_user_without_a_role_is_refused(client, make_user, folder):
    make_webapp(folder)
    client.force_login(make_user("nobody", None))
    for url in ["/webapps/", "/webapps/hello/", "/webapps/hello/-/live/", "/webapps/hello/-/activity/"]:
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize("role", ROLES[1:])
def test_every_role_reads_the_list_with_its_columns(role_client, role, folder):
    make_webapp(folder, name="/shop/api", protocol="asgi")
    # (Paths carry <wbr> at their separators: portal.templatetags.layout.breakable.)
    html = role_client(role).get("/webapps/", HTTP_HOST="localhost:8000").content.decode().replace("<wbr>", "")
    # "Open" links to the application on the applications' port of the same host.
    assert 'href="http://localhost:8001/shop/api/"' in html
    assert "ASGI" in html and "uvicorn" in html and str(folder) in html and "Stopped" in html
    assert 'href="/webapps/shop/api/-/activity/"' in html
    assert ("Start</button>" in html) == (role != "viewer")
    assert ('/webapps/shop/api/-/edit/' in html) == (role == "administrator")
    assert ('/webapps/shop/api/-/delete/' in html) == (role == "administrator")
    assert ("/webapps/-/new/" in html) == (role == "administrator")


def test_the_name_opens_the_applications_page_and_open_opens_the_application(role_client, folder):
    make_webapp(folder, name="/shop/api")
    html = role_client("viewer").get("/webapps/", HTTP_HOST="localhost:8000").content.decode()
    start = html.index('<th scope="row">')
    name_cell = html[start:html.index("</th>", start)]
    # The path breaks before its slashes only (<wbr>), never inside "shop" or "api".
    assert '<a href="/webapps/shop/api/" class="path">/shop<wbr>/api</a>' in name_cell
    assert '<a href="http://localhost:8001/shop/api/" class="small open"' in name_cell and ">Open</a>" in name_cell


def test_a_rows_error_is_shown_whole_with_its_fix(role_client, folder):
    fix = "install the missing package in its virtualenv and start it again"
    make_webapp(folder)
    WebApp.objects.update(last_error="The application did not answer within 30 seconds because " * 3 + fix)
    html = role_client("viewer").get("/webapps/").content.decode()
    assert fix + "</div>" in html and "…" not in html


@override_settings(PORTAL_APPS_PORT=9123)
def test_the_apps_port_comes_from_the_setting(role_client, folder):
    make_webapp(folder)
    html = role_client("viewer").get("/webapps/", HTTP_HOST="[::1]:8000").content.decode()
    assert 'href="http://[::1]:9123/hello/"' in html


def test_the_list_finds_by_path_or_directory_and_state(role_client, folder, tmp_path):
    make_webapp(folder, name="/flask")
    make_webapp(folder, name="/django", state="running", pid=1)
    client = role_client("viewer")
    assert "/django" not in client.get("/webapps/?q=fla").content.decode()
    html = client.get("/webapps/?state=running").content.decode()
    assert "/django" in html and "/flask/" not in html
    assert "No web application matches" in client.get("/webapps/?q=nothing").content.decode()


def test_the_empty_list_invites_an_administrator_to_create_one(role_client):
    assert "Create your first web application" in role_client("administrator").get("/webapps/").content.decode()


def test_the_detail_page_masks_secrets_and_shows_the_definition(role_client, folder):
    make_webapp(folder, environment={"APP_MODE": "demo"}, secret_environment={"API_TOKEN": "t0p-s3cret"},
                static_files={"/static": str(folder)})
    html = role_client("viewer").get("/webapps/hello/").content.decode().replace("<wbr>", "")
    assert "APP_MODE=demo" in html and "API_TOKEN=" in html
    assert "t0p-s3cret" not in html
    assert "hello:app" in html and "gunicorn" in html and "/hello/static" in html
    assert "/log/webapps/hello.log" in html


def test_an_unknown_application_is_a_404(role_client):
    assert role_client("viewer").get("/webapps/nope/").status_code == 404


@pytest.mark.parametrize(("path", "link", "words"), [
    ("/webapps/nosuch/", 'href="/webapps/"', "Go to the web applications"),
    ("/webapps/nosuch/activity/", 'href="/webapps/"', "Go to the web applications"),
    ("/gateways/Nosuch/", 'href="/gateways/"', "Go to the gateways"),
    ("/nosuch/", 'href="/"', "Go to the dashboard"),
])
def test_the_404_page_offers_the_list_of_the_part_of_the_portal_it_is_in(role_client, path, link, words):
    response = role_client("viewer").get(path)
    html = response.content.decode()
    assert response.status_code == 404 and f"There is nothing at {path}" in html
    assert f'<a {link}>{words}</a>' in html


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("administrator", 200)])
def test_only_an_administrator_opens_the_create_form(role_client, role, status):
    assert role_client(role).get("/webapps/-/new/").status_code == status


def test_create_saves_and_records_the_history_with_secrets_masked(admin_client_, folder):
    data = form_data(folder, name="flask/", environment="APP_MODE=demo", secret_environment="API_TOKEN=t0p-s3cret")
    response = admin_client_.post("/webapps/-/new/", data)
    assert response.status_code == 302 and response["Location"] == "/webapps/flask/"
    webapp = WebApp.objects.get()
    assert webapp.name == "/flask" and webapp.created_by.username == "ada"
    entry = AuditEntry.objects.get()
    assert entry.changes["environment"]["after"] == {"APP_MODE": "demo"}
    assert entry.changes["secret_environment"] == {"secret": True}
    html = admin_client_.get("/webapps/flask/").content.decode()
    assert "t0p-s3cret" not in html


def test_a_bad_definition_is_shown_again_with_every_message(admin_client_, folder):
    response = admin_client_.post("/webapps/-/new/", form_data(folder, name="/", module="app.py", workers="0"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "The definition was not saved: correct the 3 fields marked below." in html
    assert "/ alone cannot be an application&#x27;s path" in html
    assert "Write the module without .py: app." in html
    assert not WebApp.objects.exists()


def test_the_edit_form_shows_secret_names_only_and_a_blank_keeps_them(admin_client_, folder):
    make_webapp(folder, secret_environment={"API_TOKEN": "t0p-s3cret"}, python_executable="")
    html = admin_client_.get("/webapps/hello/-/edit/").content.decode()
    assert "API_TOKEN=" in html and "t0p-s3cret" not in html
    response = admin_client_.post("/webapps/hello/-/edit/", form_data(folder, secret_environment="API_TOKEN=",
                                                                      workers="2"))
    assert response.status_code == 302
    webapp = WebApp.objects.get()
    assert webapp.secret_environment == {"API_TOKEN": "t0p-s3cret"} and webapp.workers == 2
    entry = AuditEntry.objects.get(action="changed")
    assert entry.changes == {"workers": {"before": 1, "after": 2}}


def test_a_changed_secret_shows_as_changed_in_the_history(admin_client_, folder):
    make_webapp(folder, secret_environment={"API_TOKEN": "old-s3cret"}, python_executable="")
    admin_client_.post("/webapps/hello/-/edit/", form_data(folder, secret_environment="API_TOKEN=new-s3cret"))
    html = admin_client_.get("/webapps/hello/").content.decode()
    assert "Secret environment variables</span>: changed" in html
    assert "old-s3cret" not in html and "new-s3cret" not in html


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_nobody_but_an_administrator_edits_or_deletes(role_client, role, folder):
    make_webapp(folder)
    client = role_client(role)
    assert client.post("/webapps/hello/-/edit/", form_data(folder, workers="3")).status_code == 403
    assert client.post("/webapps/hello/-/delete/").status_code == 403
    assert client.post("/webapps/-/validate/", form_data(folder), headers={"HX-Trigger-Name": "name"}
                       ).status_code == 403
    assert WebApp.objects.get().workers == 1


def test_editing_a_running_applications_runtime_fields_says_stop_it_first(admin_client_, folder):
    make_webapp(folder, state="running", pid=1, python_executable="")
    response = admin_client_.post("/webapps/hello/-/edit/", form_data(folder, workers="4"))
    assert "/hello is running: stop /hello first, then change workers" in response.content.decode()
    assert WebApp.objects.get().workers == 1


def test_delete_asks_then_removes_and_keeps_the_history(admin_client_, folder):
    make_webapp(folder)
    dialog = admin_client_.get("/webapps/hello/-/delete/", headers={"HX-Request": "true"}).content.decode()
    assert "Delete web application /hello?" in dialog and "<html" not in dialog
    assert admin_client_.post("/webapps/hello/-/delete/").status_code == 302
    assert not WebApp.objects.exists()
    assert AuditEntry.objects.get(action="deleted").object_name == "/hello"


def test_a_running_application_offers_stop_not_delete(admin_client_, folder):
    make_webapp(folder, state="running", pid=1)
    html = admin_client_.get("/webapps/hello/-/delete/").content.decode()
    assert "stop /hello first, then delete it" in html and "Stop /hello</button>" in html
    admin_client_.post("/webapps/hello/-/delete/")
    assert WebApp.objects.exists()


def test_the_inline_check_answers_for_one_field(admin_client_, folder):
    response = admin_client_.post("/webapps/-/validate/", form_data(folder, name="/a/../b"),
                                  headers={"HX-Request": "true", "HX-Trigger-Name": "name"})
    assert "has a “..” segment" in response.content.decode()
    response = admin_client_.post("/webapps/-/validate/", form_data(folder, engine="uvicorn"),
                                  headers={"HX-Request": "true", "HX-Trigger-Name": "engine"})
    assert "uvicorn serves only ASGI applications" in response.content.decode()


def test_the_inline_check_of_the_directory_runs_the_import_check(admin_client_, tmp_path):
    folder = app_dir(tmp_path, "raise ImportError('flask is not installed')\n")
    response = admin_client_.post("/webapps/-/validate/", form_data(folder),
                                  headers={"HX-Request": "true", "HX-Trigger-Name": "directory"})
    assert "flask is not installed" in response.content.decode()


def test_the_inline_check_of_the_module_names_the_package_the_interpreter_lacks(admin_client_, tmp_path):
    python = portal_python_lacks("flask")
    folder = flask_example(tmp_path)
    (folder / "requirements.txt").unlink()
    response = admin_client_.post("/webapps/-/validate/", form_data(folder, name="/flask", module="app"),
                                  headers={"HX-Request": "true", "HX-Trigger-Name": "module"})
    html = response.content.decode()
    assert f"{python} lacks the package &#x27;flask&#x27; that app.py imports: give a requirements file that lists " \
           "it or a Python executable that has flask." in html
    assert "check_app.py" not in html and "Traceback" not in html


def test_the_inline_check_of_the_directory_says_its_requirements_txt_will_be_used(admin_client_, tmp_path):
    portal_python_lacks("flask")
    folder = flask_example(tmp_path)
    response = admin_client_.post("/webapps/-/validate/", form_data(folder, name="/flask", module="app"),
                                  headers={"HX-Request": "true", "HX-Trigger-Name": "directory"})
    html = response.content.decode()
    assert f"the application directory has {folder}/requirements.txt: the portal builds the application&#x27;s " \
           "own virtualenv from it" in html
    assert "field-error" not in html


def test_the_inline_check_of_a_secret_on_edit_keeps_the_blank(admin_client_, folder):
    webapp = make_webapp(folder, secret_environment={"API_TOKEN": "x"}, python_executable="")
    response = admin_client_.post("/webapps/-/validate/", {**form_data(folder, secret_environment="API_TOKEN="),
                                                          "pk": str(webapp.pk)},
                                  headers={"HX-Request": "true", "HX-Trigger-Name": "secret_environment"})
    assert response.content.decode().strip() == ""


def test_the_form_fields_check_themselves_inline(admin_client_):
    html = admin_client_.get("/webapps/-/new/").content.decode()
    assert 'hx-post="/webapps/-/validate/"' in html and 'hx-target="#feedback-directory"' in html


def test_the_dashboard_counts_web_applications_by_the_state_they_show(role_client, folder):
    import datetime as dt

    make_webapp(folder, name="/a", state="running", pid=1)
    make_webapp(folder, name="/b", intent="start", intent_at=dt.datetime.now(dt.UTC))
    html = role_client("viewer").get("/").content.decode()
    assert "Web applications" in html and "All 2 web applications" in html
    assert 'state-running">Running</span> <strong>1' in html and 'state-starting">Starting</span> <strong>1' in html


def test_the_list_filters_by_the_state_shown(role_client, folder):
    import datetime as dt

    make_webapp(folder, name="/b", intent="start", intent_at=dt.datetime.now(dt.UTC))
    assert "/b/" in role_client("viewer").get("/webapps/?state=starting").content.decode()


def test_the_inline_import_check_needs_only_its_own_fields(admin_client_, tmp_path):
    folder = app_dir(tmp_path, "raise ImportError('flask is not installed')\n")
    response = admin_client_.post("/webapps/-/validate/", form_data(folder, name="", workers="0"),
                                  headers={"HX-Request": "true", "HX-Trigger-Name": "module"})
    assert "flask is not installed" in response.content.decode()


# A secret value typed into the form never comes back to the browser ------------------


def test_a_refused_create_keeps_the_secrets_names_not_their_values(admin_client_, folder):
    response = admin_client_.post("/webapps/-/new/", form_data("/nope", secret_environment="TOKEN=verysecret999"))
    html = response.content.decode()
    assert "/nope does not exist" in html
    assert "verysecret999" not in html
    assert "TOKEN=" in html and "must be entered again" in html


def test_a_refused_edit_of_a_running_application_keeps_the_secrets_names_only(admin_client_, folder):
    make_webapp(folder, state="running", pid=1, python_executable="")
    response = admin_client_.post("/webapps/hello/-/edit/", form_data(folder, secret_environment="TOKEN=verysecret999"))
    html = response.content.decode()
    assert "stop /hello first" in html
    assert "verysecret999" not in html and "TOKEN=" in html


def test_the_inline_check_never_echoes_a_secret_line(admin_client_, folder):
    for text in ("verysecret999", "TOKEN=verysecret999\nTOKEN=verysecret999", "bad name=verysecret999"):
        response = admin_client_.post("/webapps/-/validate/", form_data(folder, secret_environment=text),
                                      headers={"HX-Request": "true", "HX-Trigger-Name": "secret_environment"})
        body = response.content.decode()
        assert "field-error" in body and "verysecret999" not in body, body


def test_after_a_refused_start_the_log_is_said_not_written_by_any_start(role_client, folder):
    from webapps import adapter

    webapp = make_webapp(folder, last_error="Start refused: there is no module nosuchmod in /srv/app")
    # The log is named after the application in this suite's var/: another test's /hello may have left one.
    adapter.log_path(webapp).unlink(missing_ok=True)
    html = role_client("viewer").get("/webapps/hello/").content.decode()
    assert "created at the first start" not in html
    assert "does not exist yet: no start has written it. The last start was refused" in html


# Wording ------------------------------------------------------------------------------


def test_the_figures_say_one_request_and_one_5xx_answer_in_the_singular():
    from django.template.loader import render_to_string

    html = render_to_string("webapps/htmx/figures.html",
                            {"f": {"count": 1, "totals": {"requests": 1, "errors_5xx": 1}}, "figures_url": "/x"})
    assert "1 request, 1 5xx answer<" in html


def test_the_import_checks_message_starts_with_a_capital(admin_client_, folder):
    html = admin_client_.post("/webapps/-/new/", form_data(folder, module="nosuchmod")).content.decode()
    assert "There is no module nosuchmod" in html


def test_the_dashboard_and_history_say_web_application_and_list_the_fields_set(admin_client_, folder):
    data = form_data(folder, name="/fastapi", environment="APP_MODE=demo", secret_environment="API_TOKEN=t0p-s3cret")
    assert admin_client_.post("/webapps/-/new/", data).status_code == 302
    dashboard = admin_client_.get("/").content.decode()
    assert ('created web application <a href="/webapps/fastapi/#history"><strong>/fastapi</strong></a>: '
            f'<span class="muted">{folder}</span>') in dashboard and "created webapp" not in dashboard
    html = admin_client_.get("/webapps/fastapi/").content.decode()
    assert "fields set" not in html
    assert '<span class="field">Application directory</span>: ' + str(folder) in html
    assert '<span class="field">Secret environment variables</span>: set (secret)' in html
    assert "t0p-s3cret" not in html and "secret_environment" not in html


def test_an_app_without_secret_variables_has_no_secret_in_its_history(admin_client_, folder):
    assert admin_client_.post("/webapps/-/new/", form_data(folder, name="/plain")).status_code == 302
    html = admin_client_.get("/webapps/plain/").content.decode()
    history = html[html.index('id="history"'):]
    assert "Secret environment variables" not in history and "set (secret)" not in history
    assert '<span class="field">Application directory</span>' in history
    # Empty and default values are left out of a creation: no "Environment variables: {}".
    assert "{}" not in history and "Static files" not in history



def test_the_rows_refresh_every_second_while_an_application_is_up(role_client, folder):
    make_webapp(folder, name="/down")
    viewer = role_client("viewer")
    assert 'hx-trigger="every 3s" data-poll="visible unannounced"' in viewer.get("/webapps/?part=rows").content.decode()
    make_webapp(folder, name="/up", state="running")
    assert 'hx-trigger="every 1s" data-poll="visible unannounced"' in viewer.get("/webapps/?part=rows").content.decode()
