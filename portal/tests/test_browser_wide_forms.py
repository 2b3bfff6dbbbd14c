"""On a 1920 px screen a definition's form uses its card's width (two columns of fields) and the
Activity filters sit on one row; on a 390 px phone both are one column. Real Chromium.
Screenshots go to test-artifacts/wide-forms/ (ignored by git) for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from conftest import log_in
from gateways.tests.factories import form_data
from portal.tests.test_browser_layout import OVERFLOW, portal_with_content  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "wide-forms"
PAGES = [("gateway-create", "/gateways/new/"), ("webapp-create", "/webapps/-/new/"), ("activity", "/activity/"),
         ("dashboard", "/"), ("gateway-detail", "/gateways/Second/"), ("profile", "/profile/")]

BOXES = """(selectors) => selectors.map(s => {
  const e = document.querySelector(s); if (!e) return null;
  const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top};
})"""


@pytest.mark.parametrize("width", [390, 1920])
def test_forms_use_the_width_and_the_filters_one_row(browser, live_server, portal_with_content, administrator,  # noqa: F811
                                                      width: int) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(administrator)
    client.post("/gateways/new/", form_data(name="Second", port="25011", python_options="-X dev"))
    client.post("/gateways/Second/edit/", form_data(name="Second", port="25012"))
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    try:
        log_in(page, live_server.url, "ada")
        for name, path in PAGES:
            page.goto(live_server.url + path)
            page.wait_for_function("() => !document.querySelector('.htmx-request')")
            folder = ARTIFACTS / str(width)
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
            problems += [f"{name} at {width} px: {p}" for p in page.evaluate(OVERFLOW, width >= 1280)]
            if name in ("gateway-create", "webapp-create"):
                card, first, second = page.evaluate(BOXES, ["main .card", "form.form .field:nth-of-type(1) input",
                                                            "form.form .field:nth-of-type(2) input"])
                if width == 1920:
                    # Side by side, and the second column ends near the card's right edge.
                    assert first["top"] == second["top"] and second["left"] > first["right"], name
                    assert second["right"] > card["left"] + 0.9 * (card["right"] - card["left"]), name
                else:
                    assert second["top"] > first["top"] and second["left"] == first["left"], name
                page.click("details.advanced > summary")
                page.screenshot(path=str(folder / f"{name}-advanced.png"), full_page=True)
                first, second = page.evaluate(BOXES, ["details.advanced > .field:nth-of-type(1)",
                                                      "details.advanced > .field:nth-of-type(2)"])
                assert (first["top"] == second["top"]) == (width == 1920), (name, first, second)
            if name == "activity":
                tops = page.evaluate("() => [...document.querySelectorAll('#activity-filters .tiles > .field')]"
                                     ".map(e => Math.round(e.getBoundingClientRect().top))")
                assert len(tops) == 5
                assert len(set(tops)) == (1 if width == 1920 else 5), tops
    finally:
        context.close()
    assert problems == [], "\n".join(problems)
