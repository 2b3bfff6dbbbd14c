"""The pages of programs are the shared ones (processes/definition_views.py), given the adapter and the
form: list, create, detail, edit, Activity, delete, as each role may, and a secret's value on none."""

from __future__ import annotations

import pytest

from portal.models import AuditEntry
from programs.models import Program
from programs.tests.conftest import form_data, make_program

pytestmark = pytest.mark.django_db
SECRET = "page-s3cr3t-4471"


def test_an_administrator_creates_reads_edits_and_deletes_one_through_the_pages(role_client):
    admin = role_client("administrator")
    response = admin.get("/programs/")
    assert response.status_code == 200 and "No programs yet" in response.content.decode()
    response = admin.post("/programs/new/", form_data(command="/no/such/program"))
    assert response.status_code == 200
    assert "/no/such/program does not exist on this host" in response.content.decode()
    response = admin.post("/programs/new/", form_data(command="sleep 30", secret_environment=f"TOKEN={SECRET}"))
    assert response.status_code == 302, response.content.decode()[-2000:]
    program = Program.objects.get()
    for url in ("/programs/", "/programs/worker/", "/programs/worker/edit/", "/programs/worker/activity/",
                "/programs/worker/delete/", "/programs/worker/row/", "/programs/worker/live/", "/"):
        response = admin.get(url)
        # 286: a row or live panel that has settled stops the page's polling (django-htmx).
        assert response.status_code in (200, 286), url
        assert SECRET not in response.content.decode(), url
    # The command in its column, breakable at its separators (<wbr>), never mid-word.
    assert program.command in admin.get("/programs/").content.decode().replace("<wbr>", "")
    response = admin.post("/programs/worker/edit/", {**form_data(), "secret_environment": "TOKEN=",
                                                     "stop_signal": "INT"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    program.refresh_from_db()
    assert program.stop_signal == "INT" and program.secret_environment == {"TOKEN": SECRET}
    assert admin.post("/programs/worker/delete/").status_code == 302
    assert not Program.objects.exists()
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["created", "changed", "deleted"]


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403)])
def test_only_an_administrator_creates_on_the_pages(role_client, role, status):
    assert role_client(role).post("/programs/new/", form_data()).status_code == status
    assert not Program.objects.exists()


def test_a_viewer_reads_but_cannot_start(role_client):
    make_program()
    viewer = role_client("viewer")
    assert viewer.get("/programs/worker/").status_code == 200
    assert viewer.post("/programs/worker/start/").status_code == 403
    assert Program.objects.get().intent == ""


@pytest.mark.parametrize("name", ["new", "Validate"])
def test_a_name_that_would_shadow_a_page_is_refused(name):
    from programs.forms import ProgramForm

    form = ProgramForm(form_data(name=name))
    assert not form.is_valid()
    assert f"“{name}” is reserved by the portal's pages: choose another name." in form.errors["name"]
