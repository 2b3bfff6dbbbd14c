"""Template filters for the layout every page shares."""

from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Where a name, path, host or command may break, as style guides break URLs: before a slash and
# before a dot between letters ("example.|com", "PyGate.|log", not "0.81"), after a hyphen,
# underscore, equals sign, comma, colon or at sign that joins two parts of a word (not inside "--workers").
# Browsers break only at spaces and after hyphens, and CSS can only add "anywhere", which
# breaks "HeldGateway" into "HeldGat|e" once a table squeezes its column: this gives the browser
# the word boundaries it lacks, so a column never has to be narrower than one part of a name.
_BREAK = re.compile(
    r"(?<=[^\W_]-)(?=[^\s-])|(?<=\S[_=,:@])(?=[^\s\-_=,:@])|(?<=[^\s/])(?=/)|(?<=[^\W_])(?=\.[^\W\d_])"
)


@register.filter(needs_autoescape=True)
def breakable(value: object, autoescape: bool = True) -> SafeString:
    """``value`` escaped, with a line break opportunity (``<wbr>``) at each separator."""
    escape = conditional_escape if autoescape else str
    if value is None:
        return mark_safe("")
    return mark_safe("<wbr>".join(str(escape(part)) for part in _BREAK.split(str(value))))
