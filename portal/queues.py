"""Celery queues: a shared one, and one per host for the work that must run there.

Starting a gateway must happen on the machine it listens on, so its tasks go to
the queue of the definition's host; a worker serves the queue of its own host.
"""

from __future__ import annotations

DEFAULT_QUEUE = "portal"
LOCAL_NAMES = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""}


def host_queue(host_name: str) -> str:
    return f"host.{host_name.lower()}"


def worker_queues(host_name: str) -> list[str]:
    return [DEFAULT_QUEUE, host_queue(host_name)]
