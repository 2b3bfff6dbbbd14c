"""Per-application figures measured by the fronts, written to a JSON file the portal reads.

The asyncio front measures them itself; for nginx, the runner (nginx.py) reads them from the
short per-request log nginx writes.

The file (rewritten atomically about once a second) holds cumulative counters since the front
started; the portal derives rates from two readings::

    {"version": 1, "started": 1767139200.0, "time": 1767139260.5,
     "apps": {"/flask": {"requests": 120, "errors_5xx": 2,
                         "latency_ms": {"le": [1, 2, 5, ...], "counts": [...], "sum": 312.5,
                                        "p50": 1.8, "p90": 4.2, "p99": 9.6}}}}

Latency is the time from the request head's arrival to the response head's being sent: the
app's time to first byte plus the front's own (nginx logs ``$upstream_header_time``, the app's
part alone), not the time a long download takes. Front-made
answers (502, 503) count as requests of their application; 404s belong to no application.
"""

from __future__ import annotations

import bisect
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

# Bucket upper bounds in milliseconds; the last bucket is everything above.
BOUNDS_MS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


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
        if not self.requests:
            return None
        rank = q * self.requests
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return float(BOUNDS_MS[i]) if i < len(BOUNDS_MS) else float(BOUNDS_MS[-1] * 2)
        return float(BOUNDS_MS[-1] * 2)

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

    def record(self, app: str, status: int, seconds: float) -> None:
        figures = self.apps.get(app)
        if figures is None:
            figures = self.apps[app] = AppFigures()
        figures.record(status, seconds)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "started": self.started,
            "time": time.time(),
            "apps": {name: f.to_json() for name, f in self.apps.items()},
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=".metrics-", suffix=".json", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_json(), fh)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
