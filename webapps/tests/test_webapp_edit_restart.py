"""Save and restart on a web application's edit page (the edit view and processes.editing are every kind's)."""

from __future__ import annotations

import sys

import pytest

from processes.models import Activity
from webapps.tests.webapp_factories import app_dir, form_data, make_webapp

pytestmark = pytest.mark.django_db
BUTTON = '<button type="submit" name="then" value="restart">Save and restart</button>'


def test_a_running_application_is_saved_and_restarted_from_its_page(admin_client_, tmp_path, redis_service):
    folder = app_dir(tmp_path)
    webapp = make_webapp(folder, state="running", pid=4242, python_executable=sys.executable)
    assert BUTTON in admin_client_.get("/webapps/hello/-/edit/").content.decode()
    data = form_data(folder, python_executable=sys.executable, workers="2")
    refused = admin_client_.post("/webapps/hello/-/edit/", data).content.decode()
    assert "/hello is running: stop /hello first, then change workers." in refused
    assert "Or press Save and restart" in refused and "marked below" not in refused
    response = admin_client_.post("/webapps/hello/-/edit/", {**data, "then": "restart"}, follow=True)
    assert "Web application /hello was saved, and its restart was requested" in response.content.decode()
    webapp.refresh_from_db()
    assert webapp.workers == 2 and webapp.requested == "restart"
    assert Activity.objects.of(webapp).get().message == "Restart requested"


def test_no_button_for_a_stopped_application(admin_client_, tmp_path):
    make_webapp(app_dir(tmp_path))
    assert BUTTON not in admin_client_.get("/webapps/hello/-/edit/").content.decode()
