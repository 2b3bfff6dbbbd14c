"""What state each gateway is in, for pages that show it."""

from __future__ import annotations

from django.db.models import Count

from gateways.models import STATE_CHOICES, Gateway

ORDER = [value for value, _ in STATE_CHOICES]
LABELS = dict(STATE_CHOICES)


def states_summary() -> list[tuple[str, str, int]]:
    """(state, label, count) for the dashboard, in the state machine's order; one query."""
    counts = dict(Gateway.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    return [(state, LABELS[state], counts[state]) for state in ORDER if counts.get(state)]
