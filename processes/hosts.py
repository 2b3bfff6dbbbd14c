"""The installation's hosts: which exist, which answer, and where their fronts are.

Each host's worker (the one that serves the host's queue) records its host in ``processes.Host``
every PORTAL_HOST_BEAT_SECONDS from its watcher thread (``beat()``): a heartbeat in the database every
host already shares, rather than asking the workers over the broker on every page (a Celery ping
waits for the slowest answer; reading a few rows does not). A host not heard from for
``MISSED`` reports is down: its worker stopped, crashed or cannot reach the database, so
nothing there is started, stopped or watched, and what the database last said of its processes is
no longer the truth. The pages then say "host down" instead of the last state (``Host.is_down``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from processes.models import Host

# Sent in each host's worker after its report (``host``: its name): what a host serves follows the
# database from there (webapps.routing rewrites this host's routes file).
host_beat = Signal()


def beat_seconds() -> float:
    return settings.PORTAL_HOST_BEAT_SECONDS


def front_address() -> str:
    """Where this host's front for web applications listens, as others reach it: HOST:PORT."""
    address = settings.PORTAL_HOST_ADDRESS
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{settings.PORTAL_APPS_PORT}"


def beat(host: str | None = None) -> None:
    """Record that this host's worker is alive now (its name, address and front)."""
    Host.objects.update_or_create(
        name=host or settings.PORTAL_HOST_NAME,
        defaults={"address": settings.PORTAL_HOST_ADDRESS, "front": front_address(), "seen_at": timezone.now()},
    )


def is_down(name: str) -> bool:
    return Host.is_down(name)


def down_failure(name: str) -> str | None:
    """Why nothing can be asked of host ``name`` now (None: it answers, or it is this host); a clause
    without a full stop, as a check's message is."""
    if not name or name.lower() == settings.PORTAL_HOST_NAME.lower():
        return None
    seen = Host.last_seen(name)
    if seen is None:
        return (f"host {name} has no worker: none has ever reported from it. Start the portal's worker there "
                f"with PORTAL_HOST_NAME={name} (docs/operations.md, \"Workers on other hosts\"), or correct the "
                "name in the definition")
    if Host.is_down(name):
        ago = int((timezone.now() - seen).total_seconds())
        return (f"host {name} is down: its worker last reported {ago} s ago. Start its worker again (or bring the "
                "host back); until then nothing there can be started or stopped, and its processes' state is "
                "unknown")
    return None


def named(server: str) -> str | None:
    """The host whose name or PORTAL_HOST_ADDRESS ``server`` is (any case), if one has reported."""
    server = server.strip().lower()
    if not server:
        return None
    found = Host.objects.filter(Q(name__iexact=server) | Q(address__iexact=server)).values_list("name", flat=True)
    names = sorted(found)
    return names[0] if names else None


def fronts(names: Iterable[str]) -> dict[str, str]:
    """Each named host's front address, as its worker last reported it (hosts never seen: absent)."""
    return dict(Host.objects.filter(name__in=list(names)).exclude(front="").values_list("name", "front"))


def check_paths_on(names: Iterable[str], wanted: list[tuple[str, str, str]], wait: float = 3.0) -> dict[str, Any]:
    """Ask each named host's worker what it lacks of ``wanted`` (processes.tasks.check_paths):
    {host: [what is missing] (empty: nothing), or a string saying why the host did not answer}.
    Asked of every host at once; the whole waits at most ``wait`` seconds."""
    import time

    from celery import current_app
    from celery.exceptions import TimeoutError as CeleryTimeout
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    from portal.queues import host_queue

    answers: dict[str, Any] = {}
    sent = {}
    for name in names:
        if problem := down_failure(name):
            answers[name] = problem
            continue
        try:
            # By name (processes/tasks.py): the tasks module imports the adapters, which import this one.
            sent[name] = current_app.send_task("processes.tasks.check_paths", args=[[list(w) for w in wanted]],
                                               queue=host_queue(name), expires=wait)
        except (OperationalError, RedisError) as e:
            answers[name] = f"the task broker does not answer ({e})"
    deadline = time.monotonic() + wait
    for name, result in sent.items():
        try:
            answers[name] = list(result.get(timeout=max(deadline - time.monotonic(), 0.05),
                                            disable_sync_subtasks=False))
        except CeleryTimeout:
            answers[name] = f"host {name}'s worker did not answer within {wait:g} s"
        except (OperationalError, RedisError) as e:
            answers[name] = f"the task broker does not answer ({e})"
    return answers
