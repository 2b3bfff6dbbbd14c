"""What the pages of every kind use: the state badge, the rows' refresh, figures and durations,
and the warnings and errors beside a form's fields."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.forms import BoundField
from django.utils.html import format_html

from portal.process.states import LABELS, RUNNING, State
from processes.models import ManagedProcess

register = template.Library()


@register.simple_tag
def state_badge(obj: ManagedProcess) -> str:
    """The state as the keeper reports it; "Starting…" while a start request is still on its way."""
    state = obj.shown_state
    label = LABELS[State(state)]
    restarts = (obj.startup or {}).get("restarts") or 0
    extra = ""
    if restarts and state == RUNNING:
        extra = format_html(
            ' <span class="muted small" title="automatic restarts since the last start">↻{}</span>', restarts
        )
    return format_html('<span class="state state-{}">{}</span>{}', state, label, extra)


@register.filter
def rows_poll_interval(rows: Iterable[Any]) -> str:
    """How often a list's rows refresh: every second while any shown process is up (a crash or a
    restart by policy can come at any moment, and a dead pid must not stay on the page for 3 s),
    every 3 s when none is (then only a request from elsewhere changes a row). The rows partial
    costs 6 ms with 10 definitions and 33 ms with a page of 100 (docs/benchmarks.md)."""
    return "1s" if any(getattr(row, "is_active", False) for row in rows) else "3s"


@register.filter
def megabytes(value: float | int | None) -> str:
    return "" if value is None else f"{value / (1024 * 1024):.1f} MB"


@register.filter
def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


@register.filter
def field_warnings(field: BoundField) -> list[str]:
    """The warnings a form (a definition form's add_warning) has for this field; they do not block a save."""
    return getattr(field.form, "field_warnings", {}).get(field.name, [])


@register.filter
def marked_fields(form: Any) -> int:
    """How many fields carry an error beside them: an error of the whole definition (a running
    server's change refused, say) is not one, and is shown at the top on its own."""
    return sum(1 for name in form.errors if name in form.fields)


# --- the shared definition pages (templates/processes/definitions/) ------------------------------


@register.filter
def field_label(model: Any, name: str) -> str:
    """A model field's name as its forms call it: "Start timeout"."""
    from django.utils.text import capfirst

    return capfirst(model._meta.get_field(name).verbose_name)


@register.filter
def attribute_of(obj: Any, name: str) -> Any:
    """``obj.<name>``, or its choice's label (``get_<name>_display``) when the field has choices."""
    display = getattr(obj, f"get_{name}_display", None)
    return display() if callable(display) else getattr(obj, name, "")


@register.filter
def main_fields(form: Any, advanced: Iterable[str]) -> list[BoundField]:
    """The form's fields that are not under "Advanced settings", in the form's order."""
    return [form[name] for name in form.fields if name not in advanced]


@register.filter
def advanced_fields(form: Any, advanced: Iterable[str]) -> list[BoundField]:
    return [form[name] for name in form.fields if name in advanced]


@register.filter
def with_errors(fields: Iterable[BoundField]) -> bool:
    return any(field.errors for field in fields)
