"""The Django admin changes programs only through ProgramForm and the service: secrets never shown."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.models import AuditEntry
from portal.roles import ADMINISTRATOR
from programs.models import Program
from programs.tests.conftest import form_data, make_program

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(make_user) -> Client:  # type: ignore[no-untyped-def]
    user = make_user("ada", ADMINISTRATOR)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_an_administrator_adds_a_program_in_the_admin_through_the_form(admin_client):
    response = admin_client.post("/admin/programs/program/add/", form_data(name="admin-made", command="sleep 5"))
    assert response.status_code == 302, response.content.decode()[-3000:]
    program = Program.objects.get()
    assert program.name == "admin-made" and program.command.startswith("/") and program.command.endswith("sleep 5")
    assert AuditEntry.objects.get().actor_name == "ada"


def test_the_admin_never_shows_a_secrets_value(admin_client):
    program = make_program(secret_environment="API_TOKEN=t0p-s3cret")
    html = admin_client.get(f"/admin/programs/program/{program.pk}/change/").content.decode()
    assert "API_TOKEN=" in html and "t0p-s3cret" not in html
    assert "t0p-s3cret" not in admin_client.get("/admin/programs/program/").content.decode()


def test_the_admin_refuses_to_change_a_running_program(admin_client):
    program = make_program()
    Program.objects.filter(pk=program.pk).update(state="running", pid=1)
    response = admin_client.post(f"/admin/programs/program/{program.pk}/change/", form_data(stop_timeout="4"))
    assert response.status_code == 200
    assert "worker is running: stop worker first" in response.content.decode()
    assert Program.objects.get().stop_timeout == 10
