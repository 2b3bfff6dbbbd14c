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


def build_queue(host_name: str) -> str:
    """Long work on a host (a web application's virtualenv build): served by a worker of its own,
    so that a build of minutes never holds a slot that starts and stops need."""
    return f"build.{host_name.lower()}"
