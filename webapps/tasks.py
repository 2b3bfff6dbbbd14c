"""The task names of older portals: a task queued before an upgrade still runs after it.

Start (with its virtualenv build), stop, restart and the install button are processes/tasks.py's,
for every kind.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from processes import tasks

KIND = "webapp"


@shared_task(acks_late=True, ignore_result=True)
def build_virtualenv(pk: int, trigger: str = "system", seq: int | None = None) -> dict[str, Any]:
    """A build an older portal sent apart from its start: the start pipeline now builds, then starts."""
    return tasks.start(KIND, pk, trigger, seq)


@shared_task(ignore_result=True)
def install_engine(pk: int, trigger: str = "system") -> dict[str, Any]:
    return tasks.install_requirements(KIND, pk, trigger)
