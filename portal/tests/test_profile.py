"""The profile page: who you are, and your API tokens."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from conftest import ROLES
from gateways.tests.factories import make_gateway
from portal.models import ApiToken

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"gwp_[A-Za-z0-9_-]{40,}")


def logged_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def create_token(client: Client, name: str = "deploy script") -> str:
    response = client.post("/profile/", {"name": name})
    assert response.status_code == 200
    found = TOKEN.findall(response.content.decode())
    assert found, "the new token is not on the page"
    return found[0]


def test_anonymous_is_sent_to_log_in(client):
    response = client.get("/profile/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/profile/"
    assert client.post("/profile/", {"name": "x"}).status_code == 302
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("role", ROLES[1:])
def test_every_role_sees_its_name_role_and_a_form_to_create_a_token(role_client, role):
    html = role_client(role).get("/profile/").content.decode()
    assert f"user-{role}" in html and role.capitalize() in html
    assert "You have no tokens yet." in html
    assert 'name="name"' in html and "Create token" in html
    assert 'href="/profile/"' in html  # the link in the top bar


def test_create_shows_the_token_once_and_stores_only_its_digest(operator):
    client = logged_in(operator)
    response = client.post("/profile/", {"name": "deploy script"})
    html = response.content.decode()
    token = TOKEN.findall(html)[0]
    assert "will not be shown again" in html
    assert response["Cache-Control"] == "no-store"

    row = ApiToken.objects.get()
    assert row.user == operator and row.name == "deploy script"
    assert row.prefix == token[:8] and row.digest != token and token not in row.digest
    assert len(row.digest) == 64

    again = client.get("/profile/").content.decode()
    assert token not in again
    assert "deploy script" in again and f"{row.prefix}…" in again and "never" in again


def test_a_token_needs_a_name(operator):
    response = logged_in(operator).post("/profile/", {"name": "   "})
    assert response.status_code == 400
    assert "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_reload_of_the_new_token_page_creates_no_second_token(operator):
    client = logged_in(operator)
    create_token(client)
    again = client.post("/profile/", {"name": "deploy script"})  # the browser's "resubmit the form?"
    assert again.status_code == 400
    assert "You already have an active token named deploy script" in again.content.decode()
    assert ApiToken.objects.filter(user=operator).count() == 1
    # Revoked, the name is free again.
    tokens = ApiToken.objects.get()
    client.post("/profile/", {"revoke": str(tokens.pk)})
    create_token(client)
    assert ApiToken.objects.filter(user=operator).count() == 2


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_the_new_token_authenticates_on_the_api_with_the_users_role(role, viewer, operator):
    user = {"viewer": viewer, "operator": operator}[role]
    make_gateway()
    token = create_token(logged_in(user))
    api = Client(headers={"Authorization": f"Bearer {token}"})
    response = api.get("/api/gateways/PyGate/")
    assert response.status_code == 200 and response.json()["name"] == "PyGate"
    assert ApiToken.objects.get().last_used_at is not None
    if role == "viewer":
        assert api.post("/api/gateways/PyGate/start").status_code == 403


def test_revoke_makes_the_token_stop_working(operator):
    client = logged_in(operator)
    token = create_token(client)
    row = ApiToken.objects.get()
    response = client.post("/profile/", {"revoke": str(row.pk)}, follow=True)
    html = response.content.decode()
    assert "was revoked: it no longer authenticates" in html
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert f'name="revoke" value="{row.pk}"' not in html  # no button for a revoked token
    revoked_cell = html.split(f"{row.prefix}…</code></td>")[1].split("</tr>")[0]
    assert row.revoked_at.strftime("%Y-%m-%d") in revoked_cell
    api = Client(headers={"Authorization": f"Bearer {token}"})
    assert api.get("/api/gateways/").status_code == 401


@pytest.mark.parametrize("value", ["²", "٣", "1" * 5000, "9" * 19, "-1", "1e3", " 1", ""])
def test_an_odd_token_number_is_answered_with_a_message_not_an_error(operator, value):
    # "²" and "٣" pass str.isdigit() but int() refuses them; 5,000 digits pass it but exceed
    # int()'s limit; 19 nines exceed the database's integer.
    client = logged_in(operator)
    create_token(client)
    response = client.post("/profile/", {"revoke": value}, follow=True)
    assert response.status_code == 200
    assert "That token is not one of your active tokens" in response.content.decode()
    assert ApiToken.objects.get().revoked_at is None


def test_another_users_token_cannot_be_revoked(viewer, operator):
    token = create_token(logged_in(operator))
    row = ApiToken.objects.get()
    response = logged_in(viewer).post("/profile/", {"revoke": str(row.pk)}, follow=True)
    assert "That token is not one of your active tokens" in response.content.decode()
    row.refresh_from_db()
    assert row.revoked_at is None
    assert Client(headers={"Authorization": f"Bearer {token}"}).get("/api/gateways/").status_code == 200


def test_another_users_tokens_are_not_listed(viewer, operator):
    create_token(logged_in(operator), name="otto's deploy")
    assert "otto&#x27;s deploy" not in logged_in(viewer).get("/profile/").content.decode()


@pytest.mark.parametrize("value", ["abc", "", "999999"])
def test_a_bad_revoke_value_is_a_message_not_an_error(operator, value):
    response = logged_in(operator).post("/profile/", {"revoke": value}, follow=True)
    assert response.status_code == 200
    assert "That token is not one of your active tokens" in response.content.decode()


def test_an_active_tokens_revoked_column_says_no(operator):
    client = logged_in(operator)
    create_token(client)
    html = client.get("/profile/").content.decode()
    row = html.split("<th scope=\"row\">deploy script</th>")[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[3] == '<span class="muted">no</span>'  # Revoked: no (it said "active")
    assert "active" not in row
