"""Every page is served with a strict Content-Security-Policy, and keeps it: in a real Chromium, the
main pages and the admin load, run htmx and poll without a single violation."""

from __future__ import annotations

import pytest

from conftest import log_in
from portal.tests.test_browser_layout import portal_with_content  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = ["/", "/gateways/", "/gateways/PyGate/", "/webapps/", "/webapps/flask/", "/activity/", "/cpf/merge/",
         "/profile/", "/admin/", "/admin/gateways/gateway/", "/admin/gateways/gateway/1/change/",
         "/admin/processes/activity/", "/admin/gateways/gateway/add/", "/admin/webapps/webapp/", "/login/"]

# Every violation, as the page sees it (the event also names the blocked directive and source).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_the_main_pages_and_the_admin_keep_a_strict_policy_without_a_violation(page, live_server,
                                                                              portal_with_content):  # noqa: F811
    base = live_server.url
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{page.url}: {m.text}")
            if "Content Security Policy" in m.text or "Content-Security-Policy" in m.text else None)
    page.add_init_script(RECORD_VIOLATIONS)
    log_in(page, base, "ada")
    for path in PAGES:
        if path == "/login/":
            page.context.clear_cookies()
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        policy = response.headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, (path, policy)
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, (path, policy)
        page.wait_for_load_state("networkidle")
        # The lists' rows and the detail pages' live panels poll every 2 s: let them swap once.
        page.wait_for_timeout(2500 if path.count("/") <= 3 and not path.startswith("/admin") else 200)
        violations = page.evaluate("window.__violations")
        assert violations == [], (path, violations)
    assert console == []
