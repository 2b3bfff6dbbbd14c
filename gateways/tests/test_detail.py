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


def test_the_log_file_is_shown_as_the_path_the_log_is_written_to(role_client, tmp_path):
    from gateways import runtime

    gateway = make_gateway()
    # (Paths carry <wbr> at their separators: portal.templatetags.layout.breakable.)
    html = role_client("viewer").get("/gateways/PyGate/").content.decode().replace("<wbr>", "")
    assert "(the portal's default log)" not in html
    assert f'<dt>Log file</dt><dd><code class="path">{runtime.log_path(gateway)}</code>' in html
    assert "none set: the portal's default place" in html
    gateway.log_file = str(tmp_path / "pygate.log")
    gateway.save()
    html = role_client("operator").get("/gateways/PyGate/").content.decode().replace("<wbr>", "")
    assert f'<dd><code class="path">{tmp_path / "pygate.log"}</code></dd>' in html


def test_a_missing_favicon_is_no_404(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_every_page_names_its_icon(role_client):
    html = role_client("viewer").get("/").content.decode()
    assert 'rel="icon" href="/static/favicon.ico"' in html and 'href="/static/favicon.svg"' in html


def _props(html: str) -> str:
    start = html.index("<dt>Created</dt>")
    return html[start:html.index("</dl>", start)]


def test_a_definition_created_from_the_cli_names_the_operator_and_no_change(admin_client_):
    import getpass
    from io import StringIO

    from django.core.management import call_command

    call_command("gateway", "create", "PyGate", "--port", "55001", "--allow-no-passphrase", stdout=StringIO())
    props = _props(admin_client_.get("/gateways/PyGate/").content.decode())
    assert f"by cli:{getpass.getuser()}" in props
    # The creation is not shown a second time as a change, nor as one made by "system".
    assert "by system" not in props and "not since it was created" in props


def test_the_last_change_is_dated_and_signed_from_the_history(admin_client_):
    from django.utils import timezone

    from portal.models import AuditEntry

    admin_client_.post("/gateways/new/", form_data())
    admin_client_.post("/gateways/PyGate/edit/", form_data(port="55009"))
    change = AuditEntry.objects.get(action="changed")
    props = _props(admin_client_.get("/gateways/PyGate/").content.decode())
    assert f"<dt>Changed</dt><dd>{timezone.localtime(change.at):%Y-%m-%d %H:%M:%S} by ada</dd>" in props
