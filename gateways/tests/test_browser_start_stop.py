"""A real browser against a real worker: Start, Running without a reload, Stop, Activity."""

import pytest

from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port
from gateways.tests.test_browser_definitions import log_in

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_an_operator_starts_and_stops_a_gateway_and_reads_its_activity(
    page, live_server, gateway_processes, operator
):
    make_gateway(port=free_port())
    base = live_server.url
    log_in(page, base, "otto")
    page.goto(f"{base}/gateways/")
    row = page.locator("#gateway-table tbody tr", has_text="PyGate")
    reloads = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url))

    row.locator("button", has_text="Start").click()
    row.locator(".state-running").wait_for(timeout=15_000)
    assert "is running" in page.inner_text("#messages")
    assert "pid" in row.inner_text()

    row.locator("button", has_text="Stop").click()
    row.locator(".state-stopped").wait_for(timeout=15_000)
    assert reloads == [], "the page reloaded; the row should have updated in place"

    row.locator("a", has_text="Activity").click()
    page.wait_for_url(f"{base}/gateways/PyGate/activity/")
    text = page.inner_text("main")
    for word in ("Start requested", "Stop requested", "otto"):
        assert word in text
    for state in ("starting", "running", "stopping", "stopped"):
        assert page.locator(f"td .state-{state}").count() >= 1
