"""The merge page, the export download and POST /api/cpf/merge: roles, preview, apply."""

from __future__ import annotations

import pytest
from django.test import Client

from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from portal import tokens
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db

FILE = "[Actions]\nCreateGateway:Name=PyGate,AllowNoPassphrase=1,Port=25001\nCreateGateway:Name=Other,AllowNoPassphrase=1,Port=25002\n"
BAD = "[Actions]\nCreateGateway:Name=PyGate,AllowNoPassphrase=1,Port=25001\nCreateGateway:Name=Other,AllowNoPassphrase=1,Port=x\n"


def token_client(user) -> Client:  # type: ignore[no-untyped-def]
    return Client(headers={"Authorization": f"Bearer {tokens.create(user, 'deploy')[1]}"})


# The page ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_the_page_refuses_a_viewer_and_an_operator(role_client, role):
    client = role_client(role)
    assert client.get("/cpf/merge/").status_code == 403
    response = client.post("/cpf/merge/", {"text": FILE, "action": "apply"})
    assert response.status_code == 403 and Gateway.objects.count() == 0


def test_the_page_sends_an_anonymous_visitor_to_log_in(role_client):
    response = role_client("anonymous").post("/cpf/merge/", {"text": FILE, "action": "apply"})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_preview_then_apply_on_the_page(admin_client_):
    page = admin_client_.get("/cpf/merge/")
    assert page.status_code == 200 and b"Restart running definitions" in page.content
    shown = admin_client_.post("/cpf/merge/", {"text": FILE, "action": "preview"})
    html = shown.content.decode()
    assert shown.status_code == 200 and Gateway.objects.count() == 0
    assert "Preview: nothing is changed until you apply it" in html and 'value="apply"' in html
    assert "2 created, 0 modified, 0 deleted, 0 already as asked" in html
    applied = admin_client_.post("/cpf/merge/", {"text": FILE, "action": "apply"}, follow=True)
    assert "Merged: 2 created" in applied.content.decode()
    assert set(Gateway.objects.values_list("name", flat=True)) == {"PyGate", "Other"}
    assert AuditEntry.objects.filter(actor_name="ada (cpf merge)").count() == 2


def test_after_apply_the_summary_is_said_once(admin_client_):
    html = admin_client_.post("/cpf/merge/", {"text": FILE, "action": "apply"}, follow=True).content.decode()
    assert html.count("2 created, 0 modified, 0 deleted, 0 already as asked") == 1, html
    assert "Merged: 2 created" in html and "<h2>Applied</h2>" in html and "<strong>PyGate</strong>" in html


def test_the_page_lists_every_key_of_every_kind_from_the_registry(admin_client_):
    from portal.cpf import registry

    html = admin_client_.get("/cpf/merge/").content.decode()
    assert "docs/operations.md" not in html and '<a href="#cpf-keys">The keys</a>' in html
    reference = html[html.index('id="cpf-keys"'):]
    assert {k.plural for k in registry.kinds()} == {"gateways", "applications", "programs"}
    for kind in registry.kinds():
        assert f'<details class="cpf-reference" id="cpf-keys-{kind.plural}">' in reference
        for verb in kind.verbs:
            assert f"<code>{verb}</code>" in reference
        for key in kind.keys:
            assert f"<code>{key.name}{'…' if key.is_prefix else ''}</code>" in reference, key.name
            assert key.description.replace("'", "&#x27;") in reference, key.name
    assert "<code>WSGIAppLocation</code><br><span class=\"muted small\">required</span>" in reference
    assert "<code>RequirementsFile</code></th>" in reference


def test_an_uploaded_file_with_crlf_and_a_bom_is_previewed_and_kept_for_apply(admin_client_):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("gateways.cpf", ("\ufeff" + FILE.replace("\n", "\r\n")).encode())
    response = admin_client_.post("/cpf/merge/", {"file": upload, "text": "", "action": "preview"})
    html = response.content.decode()
    assert response.status_code == 200 and "Create" in html and "PyGate" in html
    assert "CreateGateway:Name=PyGate,AllowNoPassphrase=1,Port=25001" in html  # in the text box, for Apply
    assert Gateway.objects.count() == 0


def test_the_page_shows_every_problem_with_its_line_and_changes_nothing(admin_client_):
    response = admin_client_.post("/cpf/merge/", {"text": BAD, "action": "apply"})
    html = response.content.decode()
    assert response.status_code == 400 and Gateway.objects.count() == 0
    assert "Nothing was changed: 1 problem below." in html
    assert "Line 3, Port</strong>: “x” is not a whole number" in html
    assert 'value="apply"' not in html


def test_the_page_refuses_an_empty_file_and_a_file_that_is_not_utf8(admin_client_):
    from django.core.files.uploadedfile import SimpleUploadedFile

    assert "The merge file is empty" in admin_client_.post("/cpf/merge/", {"text": " "}).content.decode()
    upload = SimpleUploadedFile("x.cpf", b"[Actions]\nCreateGateway:Name=Caf\xe9,Port=1\n")
    response = admin_client_.post("/cpf/merge/", {"file": upload})
    assert response.status_code == 400 and "save it as UTF-8" in response.content.decode()


def test_the_list_page_links_to_the_merge_page_for_an_administrator_only(role_client):
    assert b"/cpf/merge/" in role_client("administrator").get("/gateways/").content
    viewer_page = role_client("viewer").get("/gateways/").content
    assert b"/cpf/merge/" not in viewer_page and b"/cpf/export/?kind=gateways" in viewer_page


# Export ----------------------------------------------------------------------------------


def test_the_export_download_is_a_merge_file_of_the_kind(role_client):
    make_gateway(name="PyGate", port=25001)
    viewer = role_client("viewer")
    response = viewer.get("/cpf/export/?kind=gateways")
    assert response.status_code == 200 and response["Content-Disposition"] == 'attachment; filename="gateways.cpf"'
    assert "CreateGateway:Name=PyGate,Server=127.0.0.1,Port=25001," in response.content.decode()
    assert ",UsePassphrase=0,AllowNoPassphrase=1," in response.content.decode()  # merges again as it is
    assert viewer.get("/cpf/export/?kind=colours").status_code == 400
    assert role_client("anonymous").get("/cpf/export/").status_code == 302


# The API ---------------------------------------------------------------------------------


def test_the_api_is_a_dry_run_unless_apply_1(administrator):
    client = token_client(administrator)
    dry = client.post("/api/cpf/merge", FILE, content_type="text/plain")
    assert dry.status_code == 200 and dry.json()["dry_run"] is True and Gateway.objects.count() == 0
    assert [c["name"] for c in dry.json()["created"]] == ["PyGate", "Other"]
    done = client.post("/api/cpf/merge?apply=1", FILE, content_type="text/plain")
    assert done.status_code == 200 and done.json()["applied"] is True and Gateway.objects.count() == 2
    again = client.post("/api/cpf/merge/?apply=1", FILE, content_type="text/plain").json()
    assert again["summary"] == "0 created, 0 modified, 0 deleted, 2 already as asked"


def test_the_api_answers_problems_with_400_and_changes_nothing(administrator):
    response = token_client(administrator).post("/api/cpf/merge?apply=1", BAD, content_type="text/plain")
    body = response.json()
    assert response.status_code == 400 and Gateway.objects.count() == 0
    assert body["problems"] == [{"line": 3, "key": "Port",
                                 "message": "“x” is not a whole number: write a number from 1 to 65535, e.g. 25001."}]
    assert body["error"].startswith("Nothing was changed")
    bad_flag = token_client(administrator).post("/api/cpf/merge?apply=maybe", FILE, content_type="text/plain")
    assert bad_flag.status_code == 400 and "apply=maybe is not understood" in bad_flag.json()["error"]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_the_api_refuses_a_viewer_and_an_operator_token(role, viewer, operator):
    user = {"viewer": viewer, "operator": operator}[role]
    for query in ("", "?apply=1"):
        response = token_client(user).post(f"/api/cpf/merge{query}", FILE, content_type="text/plain")
        assert response.status_code == 403
        assert response.json()["error"].startswith("Only an Administrator may merge definitions")
    assert Gateway.objects.count() == 0


def test_the_api_without_a_token_is_401_and_a_get_is_405(administrator):
    assert Client().post("/api/cpf/merge", FILE, content_type="text/plain").status_code == 401
    response = token_client(administrator).get("/api/cpf/merge")
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_the_api_takes_the_file_as_a_multipart_upload_too(administrator):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = token_client(administrator)
    response = client.post("/api/cpf/merge?apply=1", {"file": SimpleUploadedFile("site.cpf", FILE.encode())})
    assert response.status_code == 200 and response.json()["applied"] is True
    assert Gateway.objects.count() == 2
    empty = client.post("/api/cpf/merge", b"", content_type="text/plain")
    assert empty.status_code == 400 and "The body is empty" in empty.json()["error"]


@pytest.mark.parametrize("key", ["LogFile", "PythonExecutable", "PassphraseFile"])
def test_the_api_refuses_a_path_with_a_name_too_long_with_its_key(administrator, key):
    from portal import paths

    path = paths.LOG_DIR.resolve() / ("x" * 300 + ".log")
    text = f"[Actions]\nCreateGateway:Name=PyGate,AllowNoPassphrase=1,Port=25001,{key}={path}\n"
    response = token_client(administrator).post("/api/cpf/merge?apply=1", text, content_type="text/plain")
    assert response.status_code == 400 and Gateway.objects.count() == 0
    [problem] = response.json()["problems"]
    assert problem["key"] == key and "too long" in problem["message"], problem
