"""A real browser against a real worker: Start, Running without a reload, Stop, Activity."""

import pytest

from conftest import log_in
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port

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


# A gateway that takes 4 s before it listens: longer than the list's 3 s refresh of its rows.
SLOW_START = (
    "-c 'import runpy, sys, time; time.sleep(4); sys.argv = [\"gateways.server\"] + sys.argv[3:]; "
    "runpy.run_module(\"gateways.server\", run_name=\"__main__\")'"
)


def test_a_start_slower_than_the_lists_refresh_still_says_it_is_running(
    page, live_server, gateway_processes, operator
):
    make_gateway(port=free_port(), python_options=SLOW_START)
    log_in(page, live_server.url, "otto")
    page.goto(f"{live_server.url}/gateways/")
    row = page.locator("#gateway-table tbody tr", has_text="PyGate")
    row.locator("button", has_text="Start").click()
    row.locator(".state-running").wait_for(timeout=30_000)
    page.locator("#messages", has_text="is running").wait_for(timeout=2_000)
    assert "PyGate is running" in page.inner_text("#messages")


def test_the_list_shows_a_state_changed_elsewhere_without_a_reload(page, live_server, viewer):
    gateway = make_gateway(port=free_port(), state="stopped")
    log_in(page, live_server.url, "vera")
    page.goto(f"{live_server.url}/gateways/")
    row = page.locator("#gateway-table tbody tr", has_text="PyGate")
    row.locator(".state-stopped").wait_for()
    Gateway.objects.filter(pk=gateway.pk).update(state="fatal")
    row.locator(".state-fatal").wait_for(timeout=8_000)
