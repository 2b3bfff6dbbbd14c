"""What state each gateway is in, for pages that show it."""

from __future__ import annotations

from django.db.models import Case, CharField, Count, F, Q, Value, When

from gateways.models import STATE_CHOICES, Gateway

ORDER = [value for value, _ in STATE_CHOICES]
LABELS = dict(STATE_CHOICES)

# Gateway.shown_state in SQL: a request still on its way reads as starting or stopping.
_UNSEEN = Q(intent_at__isnull=False) & (Q(state_changed_at__isnull=True) | Q(intent_at__gt=F("state_changed_at")))
SHOWN_STATE = Case(
    When(Q(intent="start") & Q(state__in=["stopped", "backoff", "stopping", "unknown"]), then=Value("starting")),
    When(Q(intent="start") & Q(state__in=["exited", "fatal"]) & _UNSEEN, then=Value("starting")),
    When(Q(intent="stop") & Q(state__in=["starting", "running", "backoff", "unknown"]), then=Value("stopping")),
    When(Q(intent="stop") & Q(state__in=["exited", "fatal"]) & _UNSEEN, then=Value("stopping")),
    default=F("state"),
    output_field=CharField(),
)


def states_summary() -> list[tuple[str, str, int]]:
    """(state, label, count) for the dashboard, in the state machine's order; one query.

    Counted by the state shown: a gateway whose start is on its way counts as starting.
    """
    rows = Gateway.objects.annotate(shown=SHOWN_STATE).values("shown").annotate(n=Count("pk"))
    counts = {row["shown"]: row["n"] for row in rows}
    return [(state, LABELS[state], counts[state]) for state in ORDER if counts.get(state)]
