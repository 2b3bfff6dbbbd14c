import pytest

from conftest import ROLES
from gateways.tests.factories import form_data, make_gateway

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ROLES[1:])
def test_every_role_reads_a_definition(role_client, role):
    make_gateway()
    response = role_client(role).get("/gateways/PyGate/")
    assert response.status_code == 200
    assert "PyGate" in response.content.decode()


def test_anonymous_must_log_in(client):
    make_gateway()
    assert client.get("/gateways/PyGate/")["Location"].startswith("/login/")


def test_the_viewer_sees_no_edit_or_delete(role_client):
    make_gateway()
    html = role_client("viewer").get("/gateways/PyGate/").content.decode()
    assert "/gateways/PyGate/edit/" not in html and "/gateways/PyGate/delete/" not in html


def test_the_page_shows_the_history_with_before_and_after(admin_client_):
    admin_client_.post("/gateways/new/", form_data())
    admin_client_.post("/gateways/PyGate/edit/", form_data(port="55009"))
    html = admin_client_.get("/gateways/PyGate/").content.decode()
    assert "History of this definition" in html
    assert "Created" in html and "Changed" in html
    assert "<del>55001</del> → <ins>55009</ins>" in html


def test_a_name_with_percent_and_dots_has_a_working_page(role_client):
    make_gateway(name="py.gate%1")
    assert role_client("viewer").get("/gateways/py.gate%251/").status_code == 200
