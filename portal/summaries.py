"""What the dashboard shows of each app, without the portal importing the apps.

Each app registers a summary from its ``AppConfig.ready()``: the template of its
tile and a callable that returns the tile's context. The dashboard draws the tiles
in the order the apps are installed (INSTALLED_APPS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    template: str
    context: Callable[[], dict[str, Any]]


_summaries: dict[str, Summary] = {}


def register_summary(app: str, template: str, context: Callable[[], dict[str, Any]]) -> None:
    """Show ``template`` with ``context()`` (as ``summary``) on the dashboard; again for ``app`` replaces it."""
    _summaries[app] = Summary(template, context)


def tiles() -> list[dict[str, Any]]:
    """Each app's tile as the dashboard draws it: its template and its summary, asked now."""
    return [{"template": s.template, "summary": s.context()} for s in _summaries.values()]
