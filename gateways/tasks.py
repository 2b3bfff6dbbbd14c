"""The task names of older portals: a task queued before an upgrade still runs after it.

Start, stop, restart, reconcile and the install button are processes/tasks.py's, for every kind.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from processes import tasks
from processes.tasks import SUPERSEDED, preflight, refuse_start  # noqa: F401  (the names older code used)

KIND = "gateway"


@shared_task(acks_late=True, ignore_result=True)
def start_gateway(gateway_pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return tasks.start(KIND, gateway_pk, trigger, seq)


@shared_task(acks_late=True, ignore_result=True)
def stop_gateway(gateway_pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return tasks.stop(KIND, gateway_pk, trigger, seq)


@shared_task(acks_late=True, ignore_result=True)
def restart_gateway(gateway_pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    return tasks.restart(KIND, gateway_pk, trigger, seq)


@shared_task(ignore_result=True)
def reconcile_all() -> int:
    return tasks.reconcile_all()


@shared_task(ignore_result=True)
def reconcile_host(host: str | None = None) -> dict[str, int]:
    return tasks.reconcile_host(host)


@shared_task(ignore_result=True)
def install_server_requirements(gateway_pk: int, trigger: str = "system") -> dict[str, Any]:
    return tasks.install_requirements(KIND, gateway_pk, trigger)
