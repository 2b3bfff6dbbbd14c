"""The end of a process's log, as its page shows it, read on the host where the log is.

A log stays on its host (the keeper writes it there). The page of a process that runs on this host
reads it here; for one on another host, that host's worker reads it (``processes.tasks.read_log``,
sent to the host's queue) and the page waits a moment for the answer, rather than assume a file
system shared between hosts.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

LINES = 100
REMOTE_WAIT = 2.0  # seconds the page waits for another host's worker


def local_tail(kind: Any, obj: Any, lines: int = LINES) -> tuple[list[str], str]:
    """(the last lines, why there are none) of the log on this host."""
    from portal.process.logtail import tail

    log = kind.log_path(obj)
    refused = kind.log_file_problem(obj)
    try:
        if refused is not None:
            # A definition saved before the log folders were enforced: never shown.
            return [], f"The log is not shown and the {kind.label} will not start: {refused.message}."
        if log.exists():
            return tail(log, lines), ""
        error = f"{log} does not exist yet: no start has written it."
        if obj.last_error.startswith("Start refused:"):
            error += f" The last start was refused before the {kind.label} ran: see Last start."
        return [], error
    except OSError as e:
        return [], f"{log} cannot be read: {e.strerror}."


def tail_of(kind: Any, obj: Any, lines: int = LINES) -> tuple[list[str], str, str]:
    """(the log's last lines, why there are none, its path) wherever it is: here, or through the
    worker of the host it runs on (whose var/ may be elsewhere than this host's)."""
    host = obj.run_host or kind.host_of(obj)
    if host.lower() == settings.PORTAL_HOST_NAME.lower():
        return (*local_tail(kind, obj, lines), str(kind.log_path(obj)))
    from celery import current_app
    from celery.exceptions import TimeoutError as CeleryTimeout
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    from portal.queues import host_queue
    from processes.hosts import down_failure

    log = kind.log_path(obj)
    if problem := down_failure(host):
        return [], f"The log is on host {host}, and {problem}.", f"{log} (on this host; on {host} its own)"
    try:
        # By name: processes.tasks.read_log reads the log with local_tail, from this module.
        result = current_app.send_task("processes.tasks.read_log", args=[kind.kind, obj.pk, lines],
                                       queue=host_queue(host), expires=REMOTE_WAIT)
        answer = result.get(timeout=REMOTE_WAIT, disable_sync_subtasks=False)
    except CeleryTimeout:
        return [], (f"The log is on host {host}; its worker did not answer within {REMOTE_WAIT:g} s (busy "
                    "with a start, or stopped): it shows at the next refresh once the worker answers."), f"on {host}"
    except (OperationalError, RedisError) as e:
        return [], f"The log is on host {host}; the task broker does not answer ({e}).", f"on {host}"
    return (list(answer.get("lines") or []), str(answer.get("error") or ""),
            f"{answer.get('path') or log} on {host}")
