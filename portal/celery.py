"""The portal's Celery application.

Imported explicitly (``from portal.celery import app``) rather than from
``portal/__init__.py``, so that code which must run without Django or Celery
(the process keeper in ``portal.process``) can import the ``portal`` package
cheaply.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _watch_gateways(sender: object = None, **kwargs: object) -> None:
    """In each worker's main process: follow this host's keepers (see gateways/watcher.py)."""
    from django.conf import settings

    from gateways.watcher import start_watcher

    start_watcher(settings.PORTAL_HOST_NAME)


@worker_shutdown.connect
def _stop_watching(sender: object = None, **kwargs: object) -> None:
    from gateways.watcher import stop_watcher

    stop_watcher()
