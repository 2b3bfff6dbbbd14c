"""``?_to_field=`` (empty) on an admin page gives the page, not a 500 (Django looks up a field named '')."""

import pytest

from gateways.tests.factories import make_gateway

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("page", ["change", "delete", "history"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_empty_to_field_is_no_to_field(admin_client_, page, method) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    url = f"/admin/gateways/gateway/{gateway.pk}/{page}/"
    if method == "get":
        response = admin_client_.get(url, {"_to_field": ""})
    else:
        response = admin_client_.post(url, {"_to_field": ""})
    assert response.status_code < 500
    if method == "get":
        assert response.status_code == 200 and "PyGate" in response.content.decode()


def test_a_field_the_admin_does_not_allow_is_still_refused(admin_client_) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    response = admin_client_.get(f"/admin/gateways/gateway/{gateway.pk}/change/", {"_to_field": "passphrase_verifier"})
    assert response.status_code == 400
