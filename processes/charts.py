"""Small SVG sparklines for the detail page, drawn on the server.

A charting library would mean shipping and pinning another JavaScript file for
two lines; a polyline is enough and works without JavaScript.
"""

from __future__ import annotations

from typing import Any

WIDTH, HEIGHT = 240, 48


def points(values: list[float], top: float) -> str:
    """An SVG polyline's points for ``values`` scaled so that ``top`` is the chart's top."""
    if not values:
        return ""
    top = top or 1.0
    step = WIDTH / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{HEIGHT - 2 - (v / top) * (HEIGHT - 4):.1f}" for i, v in enumerate(values)
    )


def sparklines(samples: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = [float(s.get("cpu") or 0.0) for s in samples]
    rss = [float(s.get("rss") or 0) / (1024 * 1024) for s in samples]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "cpu": points(cpu, max(max(cpu, default=0.0), 5.0)),
        "cpu_max": max(cpu, default=0.0),
        "rss": points(rss, max(rss, default=0.0) * 1.2),
        "rss_max": max(rss, default=0.0),
        "count": len(samples),
    }
