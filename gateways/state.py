"""What state each gateway is in, for pages that show it."""

from __future__ import annotations

from gateways.models import Gateway


def states_summary() -> list[tuple[str, int]]:
    """(state label, count) for the dashboard.

    Process control comes later; until then every definition is stopped.
    """
    count = Gateway.objects.count()
    return [("Stopped", count)] if count else []
