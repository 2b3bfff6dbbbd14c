"""POST /api/cpf/merge with a large or binary body: JSON errors that say the limit or the problem,
whatever Content-Type the client sent (curl --data-binary sends a form's)."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from gateways.models import Gateway
from portal import tokens
from portal.cpf.parser import MAX_FILE_BYTES

pytestmark = pytest.mark.django_db
FILE = "[Actions]\nCreateGateway:Name=PyGate,AllowNoPassphrase=1,Port=25001\n"
FORM = "application/x-www-form-urlencoded"  # what curl --data-binary sends unless told otherwise


@pytest.fixture
def client(administrator) -> Client:  # type: ignore[no-untyped-def]
    return Client(headers={"Authorization": f"Bearer {tokens.create(administrator, 'deploy')[1]}"})


def padded(size: int) -> str:
    """FILE with comment lines before it, ``size`` bytes in all."""
    line = "; " + "x" * 97 + "\n"
    comments = line * ((size - len(FILE)) // len(line))
    return comments + "; " + "x" * (size - len(FILE) - len(comments) - 3) + "\n" + FILE


@pytest.mark.parametrize("content_type", ["text/plain", FORM])
def test_a_file_over_django_s_form_limit_but_within_the_merge_limit_is_merged(client, content_type, caplog):
    text = padded(3 * 1024 * 1024)  # over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB), under 4 MiB
    assert len(text) == 3 * 1024 * 1024
    with caplog.at_level(logging.ERROR):
        response = client.post("/api/cpf/merge?apply=1", text, content_type=content_type)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["applied"] is True and Gateway.objects.get().name == "PyGate"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("content_type", ["text/plain", FORM])
def test_a_file_over_the_merge_limit_is_a_413_that_says_the_limit(client, content_type, caplog):
    size = MAX_FILE_BYTES + 10
    with caplog.at_level(logging.ERROR):
        response = client.post("/api/cpf/merge", "x" * size, content_type=content_type)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": f"The body has {size:,} bytes; a merge file has at most {MAX_FILE_BYTES:,} "
                                        "bytes (4 MiB): split it into several files."}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("content_type", ["application/octet-stream", FORM])
def test_a_binary_body_is_said_to_be_no_text_file(client, content_type):
    response = client.post("/api/cpf/merge", b"\x7fELF\x02\x01\x01\x00\x00\x00", content_type=content_type)
    assert response.status_code == 400
    assert response.json()["error"] == ("The file holds a NUL character (line 1): it is not a text file. Send the "
                                        "merge file itself, saved as UTF-8 text.")
    not_utf8 = client.post("/api/cpf/merge", b"\x89PNG\r\n\x1a\n", content_type=content_type)
    assert not_utf8.status_code == 400
    assert not_utf8.json()["error"] == "The file is not UTF-8 text (byte 0 is 0x89): save it as UTF-8."


def test_a_page_form_over_the_limit_says_the_limit_instead_of_a_bare_400(admin_client_, caplog):
    with caplog.at_level(logging.ERROR):
        response = admin_client_.post("/cpf/merge/", {"text": padded(3 * 1024 * 1024), "action": "apply"})
    assert response.status_code == 413
    text = response.content.decode()
    assert text.startswith("The request sent ") and "at most 2,621,440 bytes of them (2.5 MiB)" in text
    assert "Choose file on the merge page" in text
    assert not Gateway.objects.exists()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
