"""The breakable filter: where names, paths, hosts and commands may break."""

from __future__ import annotations

import pytest

from portal.templatetags.layout import breakable


@pytest.mark.parametrize(("text", "shown"), [
    ("HeldGateway-for-payments-eu", "HeldGateway-<wbr>for-<wbr>payments-<wbr>eu"),
    ("/csp/sys/xyz/reports", "/csp<wbr>/sys<wbr>/xyz<wbr>/reports"),
    ("Gateway_for_the_batch", "Gateway_<wbr>for_<wbr>the_<wbr>batch"),
    ("portal-host-1.example.com", "portal-<wbr>host-<wbr>1<wbr>.example<wbr>.com"),
    ("-W error::DeprecationWarning", "-W error::<wbr>DeprecationWarning"),
    # Not inside an option's leading dashes, a number, or at a space.
    ("--workers 4 --uds-permissions", "--workers 4 --uds-<wbr>permissions"),
    ("Ready in 0.81 s", "Ready in 0.81 s"),
    ("see /var/log", "see /var<wbr>/log"),
])
def test_it_offers_a_break_at_each_separator_and_nowhere_else(text, shown):
    assert breakable(text) == shown


def test_it_escapes_what_it_is_given():
    assert breakable("<b>a/b</b>") == "&lt;b&gt;a<wbr>/b&lt;<wbr>/b&gt;"
    assert breakable(None) == ""
