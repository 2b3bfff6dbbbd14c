"""Words a user reads: counts in good English, the export's header, the token's powers per role."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from gateways.tests.factories import form_data, make_gateway

pytestmark = pytest.mark.django_db


def test_one_wrong_field_is_the_field_and_several_are_counted(admin_client_):
    html = admin_client_.post("/gateways/new/", form_data(port="")).content.decode()
    assert "The definition was not saved: correct the field marked below." in html
    html = admin_client_.post("/gateways/new/", form_data(port="", name="", server="")).content.decode()
    assert "The definition was not saved: correct the 3 fields marked below." in html


@pytest.mark.parametrize(("count", "link"), [(0, "Gateways →"), (1, "Gateways →"), (2, "All 2 gateways →")])
def test_the_dashboard_tile_counts_in_good_english(role_client, count, link):
    for number in range(count):
        make_gateway(name=f"G{number}", port=25001 + number)
    html = role_client("viewer").get("/").content.decode()
    assert f">{link}</a>" in html
    assert not re.search(r"All [01] ", html)


def test_the_export_header_says_what_and_when_in_plain_english():
    out = StringIO()
    call_command("cpf", "export", stdout=out, stderr=StringIO())
    first = out.getvalue().splitlines()[0]
    assert first == f"; Gateways, web applications and programs exported by the portal on {timezone.localdate():%Y-%m-%d}."


def test_the_python_options_example_is_code_kept_on_one_line(admin_client_):
    html = admin_client_.get("/gateways/new/").content.decode()
    assert "(e.g. <code>-X dev -W error</code>)" in html
    css = admin_client_.get("/static/css/portal.css")
    text = b"".join(css.streaming_content).decode() if css.streaming else css.content.decode()
    assert ".help code { white-space: nowrap; }" in text


@pytest.mark.parametrize(("role", "says"), [
    ("administrator", "it can read gateways and web applications, start, stop and restart them, and merge CPF files"),
    ("operator", "it can read gateways and web applications and start, stop and restart them, not merge CPF files"),
    ("viewer", "it can read gateways and web applications, not start or stop them"),
])
def test_the_profile_says_what_a_token_can_do_for_each_role(role_client, role, says):
    html = role_client(role).get("/profile/").content.decode()
    assert says in html
    assert f"{says}." in html or f"{says} (<code>POST /api/cpf/merge</code>)." in html
