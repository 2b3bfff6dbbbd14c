import pytest
from django.conf import settings

from conftest import PASSWORD


@pytest.mark.django_db
def test_logging_in_leads_to_where_the_user_was_going(client, viewer):
    response = client.post("/login/", {"username": "vera", "password": PASSWORD, "next": "/gateways/"})
    assert response["Location"] == "/gateways/"


@pytest.mark.django_db
def test_a_wrong_password_says_what_to_do(client, viewer):
    html = client.post("/login/", {"username": "vera", "password": "nope"}).content.decode()
    assert "did not match" in html and "ask an administrator" in html


@pytest.mark.django_db
def test_logging_out_needs_a_post_and_ends_the_session(client, viewer):
    client.force_login(viewer)
    assert client.post("/logout/")["Location"] == "/login/"
    assert client.get("/gateways/").status_code == 302


@pytest.mark.django_db
def test_pages_load_htmx_from_the_portal_not_a_cdn(admin_client_):
    html = admin_client_.get("/gateways/").content.decode()
    assert "/static/vendor/htmx-2.0.11.min.js" in html
    assert "unpkg" not in html and "cdn" not in html.lower()
    assert admin_client_.get("/static/vendor/htmx-2.0.11.min.js").status_code == 200


@pytest.mark.django_db
def test_the_portal_cookies_have_names_of_their_own(client, viewer):
    # A hosted Django app keeps sessionid/csrftoken; the apps' front strips exactly these two.
    client.get("/login/")
    response = client.post("/login/", {"username": "vera", "password": PASSWORD})
    assert "portal_sessionid" in response.cookies and "portal_csrftoken" in client.cookies
    assert "sessionid" not in response.cookies and "csrftoken" not in client.cookies
    assert settings.PORTAL_COOKIE_NAMES == ("portal_sessionid", "portal_csrftoken")
