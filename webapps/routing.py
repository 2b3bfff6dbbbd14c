"""What the front serves: one route per web application, in the routes file's shape
(webapps/front/routes.py, version 1), from the definitions and their states now."""

from __future__ import annotations

from typing import Any

from portal.process.states import STOPPED, STOPPING
from webapps import adapter
from webapps.models import WebApp


def route_of(webapp: WebApp) -> dict[str, Any]:
    state = webapp.shown_state
    reason = webapp.last_error
    if state == STOPPING:
        # The front knows no "stopping": it answers as for a stopped application, saying so.
        state, reason = STOPPED, reason or "it is stopping"
    return {
        "path": webapp.name,
        "socket": str(adapter.socket_path(webapp)),
        "state": state,
        "reason": reason,
        "protocol": webapp.protocol,
        "static": [{"url": webapp.name + sub, "dir": folder} for sub, folder in (webapp.static_files or {}).items()],
    }


def current_routes() -> list[dict[str, Any]]:
    """Every application's route, as the front's routes file lists them."""
    return [route_of(w) for w in WebApp.objects.all()]
