"""A real browser: log in, create a gateway, see it, a bad port, edit, delete."""

import pytest

from conftest import log_in
from gateways.models import Gateway

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_administrator_manages_a_definition_in_the_browser(page, live_server, administrator):
    base = live_server.url
    log_in(page, base, "ada")

    page.click("text=Gateways")
    page.click("text=Create your first gateway")
    page.fill("#id_name", "PyGate")
    page.fill("#id_port", "55001")
    # Without a passphrase, Save asks for the acknowledgement that any local user can use it.
    page.click("button:has-text('Save')")
    assert "Without a passphrase any local user can run code as" in page.inner_text("#feedback-allow_no_passphrase")
    assert not Gateway.objects.exists()
    page.check("#id_allow_no_passphrase")
    page.click("button:has-text('Save')")
    page.wait_for_url(f"{base}/gateways/")
    row = page.locator("#gateway-table tbody tr", has_text="PyGate")
    assert "Python" in row.inner_text() and "Stopped" in row.inner_text()
    assert "Gateway PyGate was created." in page.inner_text("#messages")

    # A second definition on the same port: the inline check answers before Save.
    page.click("text=Create gateway")
    page.fill("#id_name", "Second")
    page.fill("#id_port", "55001")
    page.check("#id_allow_no_passphrase")
    page.press("#id_port", "Tab")
    feedback = page.locator("#feedback-port")
    feedback.get_by_text("already used by gateway PyGate").wait_for()
    page.click("button:has-text('Save')")
    assert "Port 55001 on 127.0.0.1 is already used by gateway PyGate" in page.inner_text("#feedback-port")
    assert page.input_value("#id_name") == "Second"  # nothing typed is lost
    assert Gateway.objects.count() == 1

    # Edit: the name is read-only, the port changes.
    page.goto(f"{base}/gateways/PyGate/edit/")
    assert page.get_attribute("#id_name", "readonly") is not None
    page.fill("#id_port", "55002")
    page.click("button:has-text('Save')")
    page.wait_for_url(f"{base}/gateways/PyGate/")
    assert "<del>55001</del>" in page.content()

    # Delete through the confirmation dialog, which names the gateway.
    page.click(".pagehead >> text=Delete")
    dialog = page.locator("dialog#dialog")
    dialog.get_by_text("Delete gateway PyGate?").wait_for()
    dialog.locator("button.danger").click()
    page.wait_for_url(f"{base}/gateways/")
    assert "Gateway PyGate was deleted." in page.inner_text("#messages")
    assert not Gateway.objects.exists()


def test_a_viewer_sees_no_edit_or_delete_in_the_browser(page, live_server, viewer):
    Gateway.objects.create(name="PyGate", port=55001, allow_no_passphrase=True)
    log_in(page, live_server.url, "vera")
    page.goto(f"{live_server.url}/gateways/")
    table = page.inner_text("#gateway-table")
    assert "PyGate" in table
    assert "Edit" not in table and "Delete" not in table
    assert page.locator("text=Create gateway").count() == 0
