"""The state a managed process shows, in SQL: for lists filtered by state and for counting."""

from __future__ import annotations

from django.db.models import Case, CharField, F, Q, Value, When

from portal.process import states
from portal.process.states import RUNNING, START, STARTING, STOP, STOPPED, STOPPING

ORDER = list(states.ALL)
LABELS = dict(states.CHOICES)

# ManagedProcess.shown_state in SQL: a request still on its way reads as starting or stopping.
# A start reads as starting from any state but starting and running, and from a state the
# process ended in (exited, fatal) only until the request is seen; a stop likewise.
_UNSEEN = Q(intent_at__isnull=False) & (Q(state_changed_at__isnull=True) | Q(intent_at__gt=F("state_changed_at")))
_ENDED = [s for s in ORDER if s in states.ENDED]
_START_PENDING = [s for s in ORDER if s not in states.ENDED and s not in (STARTING, RUNNING)]
_STOP_PENDING = [s for s in ORDER if s not in states.ENDED and s not in (STOPPING, STOPPED)]
SHOWN_STATE = Case(
    When(Q(intent=START) & Q(state__in=_START_PENDING), then=Value(STARTING)),
    When(Q(intent=START) & Q(state__in=_ENDED) & _UNSEEN, then=Value(STARTING)),
    When(Q(intent=STOP) & Q(state__in=_STOP_PENDING), then=Value(STOPPING)),
    When(Q(intent=STOP) & Q(state__in=_ENDED) & _UNSEEN, then=Value(STOPPING)),
    default=F("state"),
    output_field=CharField(),
)




def states_summary(model: type) -> list[tuple[str, str, int]]:
    """(state, label, count) of a kind's definitions, in the state machine's order; one query.
    Counted by the state shown: one whose start is on its way counts as starting."""
    from django.db.models import Count

    rows = model.objects.annotate(shown=SHOWN_STATE).values("shown").annotate(n=Count("pk"))
    counts = {row["shown"]: row["n"] for row in rows}
    return [(state, LABELS[state], counts[state]) for state in ORDER if counts.get(state)]


def register_dashboard_tile(kind: str) -> None:
    """The dashboard's tile of a kind (its definitions by state), from its AppConfig.ready()."""
    from portal import summaries
    from processes.kinds import adapter_for

    def summary() -> dict[str, object]:
        adapter = adapter_for(kind)
        by_state = states_summary(adapter.model)
        return {"kind": adapter, "by_state": by_state, "count": sum(n for _, _, n in by_state)}

    summaries.register_summary(kind, "processes/definitions/_dashboard_tile.html", summary)
