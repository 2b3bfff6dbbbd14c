"""What state each gateway is in, for pages that show it."""

from __future__ import annotations

from django.db.models import Count

from gateways.models import Gateway
from processes.state import LABELS, ORDER, SHOWN_STATE


def states_summary() -> list[tuple[str, str, int]]:
    """(state, label, count) for the dashboard, in the state machine's order; one query.

    Counted by the state shown: a gateway whose start is on its way counts as starting.
    """
    rows = Gateway.objects.annotate(shown=SHOWN_STATE).values("shown").annotate(n=Count("pk"))
    counts = {row["shown"]: row["n"] for row in rows}
    return [(state, LABELS[state], counts[state]) for state in ORDER if counts.get(state)]
