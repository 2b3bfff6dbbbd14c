"""Inline validation: one field's messages, for htmx to swap in beside it."""

import pytest

from gateways.tests.factories import form_data, make_gateway

pytestmark = pytest.mark.django_db


def test_a_clashing_port_is_reported_inline(admin_client_):
    make_gateway()
    response = admin_client_.post(
        "/gateways/validate/", form_data(name="Other"), headers={"HX-Request": "true", "HX-Trigger-Name": "port"}
    )
    assert response.status_code == 200
    assert "already used by gateway PyGate" in response.content.decode()


def test_only_the_asked_field_is_reported(admin_client_):
    response = admin_client_.post(
        "/gateways/validate/", form_data(port="0", server="bad host"),
        headers={"HX-Request": "true", "HX-Trigger-Name": "server"},
    )
    html = response.content.decode()
    assert "neither an IP address nor a host name" in html
    assert "65535" not in html


def test_a_valid_field_gets_an_empty_answer(admin_client_):
    # A port below the kernel's range for outgoing connections: 55001 would get a warning.
    response = admin_client_.post(
        "/gateways/validate/", form_data(port="25001"), headers={"HX-Request": "true", "HX-Trigger-Name": "port"}
    )
    assert response.content.decode().strip() == ""


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_administrators_may_validate(role_client, role):
    assert role_client(role).post("/gateways/validate/", form_data()).status_code == 403


def test_anonymous_is_not_answered(client):
    response = client.post("/gateways/validate/", form_data(), headers={"HX-Request": "true"})
    assert response.status_code == 401
