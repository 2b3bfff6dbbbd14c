"""The Django admin changes web applications only as the pages do: the same form, secrets never shown."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.models import AuditEntry
from webapps.models import WebApp
from webapps.tests.webapp_factories import app_dir, form_data, make_webapp

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", password="x"))
    return client


def test_the_admin_never_shows_a_secrets_value(superuser_client, tmp_path):
    webapp = make_webapp(app_dir(tmp_path), secret_environment={"API_TOKEN": "t0p-s3cret"})
    html = superuser_client.get(f"/admin/webapps/webapp/{webapp.pk}/change/").content.decode()
    assert "API_TOKEN=" in html and "t0p-s3cret" not in html
    assert "t0p-s3cret" not in superuser_client.get("/admin/webapps/webapp/").content.decode()


def test_the_admin_saves_through_the_form_and_records_the_history(superuser_client, tmp_path):
    folder = app_dir(tmp_path)
    response = superuser_client.post("/admin/webapps/webapp/add/", form_data(folder, name="/admin-made"))
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert WebApp.objects.get().name == "/admin-made"
    assert AuditEntry.objects.get().actor_name == "root"


def test_the_admin_refuses_to_change_a_running_application(superuser_client, tmp_path):
    folder = app_dir(tmp_path)
    webapp = make_webapp(folder, state="running", pid=1, python_executable="")
    response = superuser_client.post(f"/admin/webapps/webapp/{webapp.pk}/change/", form_data(folder, workers="5"))
    assert "stop /hello first, then change workers" in response.content.decode()
    assert WebApp.objects.get().workers == 1


def test_an_administrator_by_role_manages_web_applications_in_the_admin(make_user, tmp_path):
    make_webapp(app_dir(tmp_path))
    client = Client()
    client.force_login(make_user("ada", "Administrator"))
    assert client.get("/admin/webapps/webapp/").status_code == 200
    viewer = Client()
    viewer.force_login(make_user("vera", "Viewer"))
    assert viewer.get("/admin/webapps/webapp/").status_code in (302, 403)


@pytest.mark.parametrize("page", ["change", "delete"])
def test_an_empty_to_field_gives_the_page(superuser_client, tmp_path, page):
    """The fuzz test found Django's 500 here first (portal.middleware.AdminIgnoresEmptyToField)."""
    webapp = make_webapp(app_dir(tmp_path))
    response = superuser_client.get(f"/admin/webapps/webapp/{webapp.pk}/{page}/", {"_to_field": ""})
    assert response.status_code == 200 and "/hello" in response.content.decode()


def test_a_refused_admin_save_never_sends_a_secrets_value_back(superuser_client, tmp_path):
    folder = app_dir(tmp_path)
    response = superuser_client.post("/admin/webapps/webapp/add/",
                                     form_data("/nope", secret_environment="TOKEN=verysecret999"))
    html = response.content.decode()
    assert "/nope does not exist" in html and "TOKEN=" in html and "verysecret999" not in html
    webapp = make_webapp(folder, state="running", pid=1, python_executable="")
    response = superuser_client.post(f"/admin/webapps/webapp/{webapp.pk}/change/",
                                     form_data(folder, secret_environment="TOKEN=verysecret999"))
    html = response.content.decode()
    assert "stop /hello first" in html and "verysecret999" not in html
