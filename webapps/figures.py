"""Live figures of a web application measured by the front, for its detail page.

Requests per second, 5xx per second and latency percentiles come from the front (both the asyncio
front and nginx write the same file, webapps/front/metrics.py): its ``history`` holds one point a
second for the last two minutes, so the page draws them without keeping anything itself. CPU and
memory over the application's whole process tree are the worker's samples (processes/watcher.py),
drawn by the live panel next to this one.

The partial (``webapps.views.webapp_figures``) is polled by htmx every 2 s while the page is visible.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import reverse

from processes.charts import HEIGHT, WIDTH, points

# The front rewrites its file every second; older than this, it is not running.
STALE_SECONDS = 5.0


def front_history(path: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str]:
    """The front's points for this mount, its totals, and why there are none ("" when there are)."""
    metrics = Path(settings.WEBAPPS_FRONT_METRICS_FILE)
    try:
        data = json.loads(metrics.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], None, "The front has not written any figures yet: it does once it runs (make run starts it)."
    except (OSError, ValueError):
        return [], None, "The front's figures cannot be read just now."
    if time.time() - float(data.get("time") or 0) > STALE_SECONDS:
        return [], None, "The front is not running: no requests are being measured."
    history = (data.get("history") or {}).get(path) or []
    totals = (data.get("apps") or {}).get(path)
    if not history:
        return [], totals, "No request has reached the application through the front yet."
    return history, totals, ""


def _series(values: list[float | None]) -> str:
    clean = [v or 0.0 for v in values]
    return points(clean, max(max(clean, default=0.0), 1.0) * 1.1)


def figures(webapp: Any) -> dict[str, Any]:
    """The template's context: the latest values and the sparklines' points."""
    history, totals, why = front_history(webapp.name)
    recent = history[-5:]
    span = len(recent) or 1
    p = {q: [h.get(q) for h in history] for q in ("p50", "p90", "p99")}
    top_ms = max([v or 0.0 for v in p["p99"]] + [1.0]) * 1.1
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "count": len(history),
        "why": why,
        "totals": totals,
        "rps": sum(h["rps"] for h in recent) / span,
        "e5xx": sum(h["e5xx"] for h in recent) / span,
        "latency": next(({q: h.get(q) for q in ("p50", "p90", "p99")} for h in reversed(history) if h.get("p50")),
                        None),
        "rps_line": _series([h["rps"] for h in history]),
        "rps_max": max((h["rps"] for h in history), default=0.0),
        "e5xx_line": _series([h["e5xx"] for h in history]),
        "e5xx_max": max((h["e5xx"] for h in history), default=0.0),
        # p50 and p99 in one chart, on one scale (p99's).
        "p50_line": points([v or 0.0 for v in p["p50"]], top_ms),
        "p99_line": points([v or 0.0 for v in p["p99"]], top_ms),
        "p99_max": max((v or 0.0 for v in p["p99"]), default=0.0),
    }


def figures_context(webapp: Any) -> dict[str, Any]:
    """What the detail page passes to templates/webapps/htmx/figures.html."""
    return {"f": figures(webapp), "figures_url": reverse("webapps:figures", args=[webapp.slug])}
