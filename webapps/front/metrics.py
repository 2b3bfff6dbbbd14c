"""Per-application figures measured by the fronts, written to a JSON file the portal reads.

The asyncio front measures them itself; for nginx, the runner (nginx.py) reads them from the
short per-request log nginx writes.

The file (rewritten atomically about once a second) holds cumulative counters since the front
started; the portal derives rates from two readings::

    {"version": 1, "started": 1767139200.0, "time": 1767139260.5,
     "apps": {"/flask": {"requests": 120, "errors_5xx": 2,
                         "latency_ms": {"le": [1, 2, 5, ...], "counts": [...], "sum": 312.5,
                                        "p50": 1.8, "p90": 4.2, "p99": 9.6}}}}

``history`` holds, per application, one point per write over the last ``HISTORY`` writes (about
two minutes): the rates and latency percentiles of the interval since the previous write, for the
sparklines of the application's page::

    "history": {"/flask": [{"t": 1767139260.5, "rps": 12.0, "e5xx": 0.0,
                            "p50": 2.0, "p90": 5.0, "p99": 10.0}, ...]}

Latency is the time from the request head's arrival to the response head's being sent: the
app's time to first byte plus the front's own (nginx logs ``$upstream_header_time``, the app's
part alone), not the time a long download takes. Front-made
answers (502, 503) count as requests of their application; 404s belong to no application.
"""

from __future__ import annotations

import bisect
import collections
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

# Bucket upper bounds in milliseconds; the last bucket is everything above.
BOUNDS_MS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
HISTORY = 120  # points: about two minutes at one write a second


def _percentile(counts: list[int], total: int, q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (the last bucket reports 2x its floor)."""
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        seen += count
        if seen >= rank and count:
            return float(BOUNDS_MS[i]) if i < len(BOUNDS_MS) else float(BOUNDS_MS[-1] * 2)
    return float(BOUNDS_MS[-1] * 2)


class AppFigures:
    __slots__ = ("counts", "errors_5xx", "requests", "sum_ms")

    def __init__(self) -> None:
        self.requests = 0
        self.errors_5xx = 0
        self.sum_ms = 0.0
        self.counts = [0] * (len(BOUNDS_MS) + 1)

    def record(self, status: int, seconds: float) -> None:
        ms = seconds * 1000.0
        self.requests += 1
        if status >= 500:
            self.errors_5xx += 1
        self.sum_ms += ms
        self.counts[bisect.bisect_left(BOUNDS_MS, ms)] += 1

    def percentile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the q-quantile (the last bucket reports 2x its floor)."""
        return _percentile(self.counts, self.requests, q)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors_5xx": self.errors_5xx,
            "latency_ms": {
                "le": list(BOUNDS_MS),
                "counts": list(self.counts),
                "sum": round(self.sum_ms, 3),
                "p50": self.percentile(0.5),
                "p90": self.percentile(0.9),
                "p99": self.percentile(0.99),
            },
        }


class Metrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.apps: dict[str, AppFigures] = {}
        self.history: dict[str, collections.deque[dict[str, Any]]] = {}
        # Per app: (time, requests, errors, bucket counts) at the last tick.
        self._last: dict[str, tuple[float, int, int, list[int]]] = {}

    def record(self, app: str, status: int, seconds: float) -> None:
        figures = self.apps.get(app)
        if figures is None:
            figures = self.apps[app] = AppFigures()
        figures.record(status, seconds)

    def tick(self, now: float | None = None) -> None:
        """Add one history point per app: the figures of the interval since the last tick."""
        now = time.time() if now is None else now
        for name, f in self.apps.items():
            then, requests, errors, counts = self._last.get(name, (self.started, 0, 0, [0] * len(f.counts)))
            self._last[name] = (now, f.requests, f.errors_5xx, list(f.counts))
            seconds = max(now - then, 1e-3)
            delta = [a - b for a, b in zip(f.counts, counts, strict=True)]
            n = f.requests - requests
            point = {
                "t": round(now, 3),
                "rps": round(n / seconds, 3),
                "e5xx": round((f.errors_5xx - errors) / seconds, 3),
                "p50": _percentile(delta, n, 0.5),
                "p90": _percentile(delta, n, 0.9),
                "p99": _percentile(delta, n, 0.99),
            }
            self.history.setdefault(name, collections.deque(maxlen=HISTORY)).append(point)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "started": self.started,
            "time": time.time(),
            "apps": {name: f.to_json() for name, f in self.apps.items()},
            "history": {name: list(points) for name, points in self.history.items()},
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        """Add a history point (``tick``) and write the file atomically."""
        self.tick()
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=".metrics-", suffix=".json", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_json(), fh)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
