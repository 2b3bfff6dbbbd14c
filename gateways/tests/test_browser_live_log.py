"""The detail page's log box in a real browser: the newest lines in view, following new ones."""

from __future__ import annotations

import pytest

from conftest import log_in
from gateways import runtime
from gateways.tests.factories import make_gateway

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# How far the log box is from its newest line, in px (0: the newest line is in view).
FROM_BOTTOM = "() => { const b = document.querySelector('pre.log'); return b.scrollHeight - b.scrollTop - b.clientHeight; }"


def append(path, first: int, last: int) -> None:  # type: ignore[no-untyped-def]
    with path.open("a") as f:
        f.writelines(f"2026-11-30 01:00:00 INFO event {i}\n" for i in range(first, last + 1))


def test_the_log_shows_the_newest_lines_and_follows_them(page, live_server, viewer):
    gateway = make_gateway()
    log = runtime.log_path(gateway)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    append(log, 1, 90)
    log_in(page, live_server.url, "vera")
    page.goto(f"{live_server.url}/gateways/PyGate/")

    box = page.locator("pre.log")
    assert box.evaluate("b => b.scrollHeight > b.clientHeight"), "the log should be taller than its box"
    assert page.evaluate(FROM_BOTTOM) <= 1, "the newest line is not in view on load"

    # New lines arrive: the panel refreshes and the box follows them.
    append(log, 91, 95)
    page.wait_for_function("() => document.querySelector('pre.log').textContent.includes('event 95')")
    page.wait_for_timeout(100)  # a moment for the swap's handlers; the next refresh is 2 s away
    assert page.evaluate(FROM_BOTTOM) <= 1, "the box did not follow the new lines"

    # The reader scrolls up to read: new lines do not pull the box down.
    box.evaluate("b => { b.scrollTop = 40; }")
    append(log, 96, 97)
    page.wait_for_function("() => document.querySelector('pre.log').textContent.includes('event 97')")
    page.wait_for_timeout(100)
    assert box.evaluate("b => b.scrollTop") == 40
    assert page.evaluate(FROM_BOTTOM) > 1

    # Back at the bottom, it follows again.
    box.evaluate("b => { b.scrollTop = b.scrollHeight; }")
    append(log, 98, 99)
    page.wait_for_function("() => document.querySelector('pre.log').textContent.includes('event 99')")
    page.wait_for_timeout(100)
    assert page.evaluate(FROM_BOTTOM) <= 1


def test_long_first_output_lines_wrap_instead_of_being_cut(page, live_server, viewer):
    line = "Traceback: File /opt/app/" + "deep/" * 60 + "module.py, line 1234, in <module> " + "x" * 200
    make_gateway(startup={"command": "python -m gateways.server", "first_lines": [line], "error": "it exited"})
    log_in(page, live_server.url, "vera")
    page.goto(f"{live_server.url}/gateways/PyGate/")
    output = page.locator("#startup pre.output")
    assert output.inner_text().strip() == line
    assert output.evaluate("p => p.scrollWidth <= p.clientWidth"), "the line runs past the box's edge"
