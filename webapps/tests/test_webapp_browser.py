"""A real browser against a real worker: an administrator defines a web application with the
form's inline checks, starts it from its page and finds the link to it on the applications' port."""

from __future__ import annotations

import pytest

from conftest import log_in
from webapps.models import WebApp
from webapps.tests.test_webapp_start_stop import get_over_socket, webapp_processes  # noqa: F401  (a fixture)
from webapps.tests.webapp_factories import app_dir

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_an_administrator_creates_starts_and_opens_an_application(page, live_server, webapp_processes,  # noqa: F811
                                                                   administrator, tmp_path):
    folder = app_dir(tmp_path)
    base = live_server.url
    log_in(page, base, "ada")
    page.goto(f"{base}/webapps/")
    page.click("text=Create your first web application")
    page.fill("#id_name", "/hello/")
    page.fill("#id_directory", str(folder))
    # A wrong module: the inline check imports it in the application's interpreter and says why not.
    page.fill("#id_module", "hello.py")
    page.locator("#id_module").dispatch_event("change")
    page.locator("#feedback-module", has_text="Write the module without .py: hello.").wait_for(timeout=10_000)
    page.fill("#id_module", "helo")
    page.locator("#id_module").dispatch_event("change")
    page.locator("#feedback-module", has_text="There is no module helo").wait_for(timeout=15_000)
    page.fill("#id_module", "hello")
    page.locator("#id_module").dispatch_event("change")
    page.wait_for_function("() => document.querySelector('#feedback-module').innerText.trim() === ''",
                           timeout=15_000)
    page.fill("#id_secret_environment", "API_TOKEN=t0p-s3cret")
    page.click("button:has-text('Save')")
    page.wait_for_url(f"{base}/webapps/hello/")
    assert "Web application /hello was created." in page.inner_text("#messages")
    assert "t0p-s3cret" not in page.content()

    page.locator("#live button", has_text="Start").click()
    page.locator("#live .state-running").wait_for(timeout=40_000)
    assert "/hello is running" in page.inner_text("#messages")
    assert "Ready in" in page.inner_text("#startup")
    webapp = WebApp.objects.get()
    assert get_over_socket(webapp, "/hello/") == (200, b"hello from /hello")
    # The application's own link: the same host, on the applications' port.
    href = page.locator(".pagehead a", has_text="Open").get_attribute("href")
    assert href == "http://localhost:8001/hello/"

    page.locator("#live button", has_text="Stop").click()
    page.locator("#live .state-stopped").wait_for(timeout=20_000)


@pytest.mark.parametrize("width", [390, 1920])
def test_the_forms_textareas_are_as_wide_as_its_inputs(page, live_server, administrator, width):
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, "ada")
    page.goto(f"{live_server.url}/webapps/-/new/")
    inputs = page.locator("#id_directory").bounding_box()
    # The columns of the form (one on a phone, two on a wide screen): a textarea fills one.
    columns = {round(box["x"]) for box in (page.locator(f"#id_{name}").bounding_box()
                                           for name in ("name", "directory", "module", "callable"))}
    for name in ("environment", "secret_environment", "static_files"):
        box = page.locator(f"#id_{name}").bounding_box()
        assert abs(box["width"] - inputs["width"]) < 1 and round(box["x"]) in columns, (name, box, columns)
