"""The portal's Celery application.

Imported explicitly (``from portal.celery import app``) rather than from
``portal/__init__.py``, so that code which must run without Django or Celery
(the process keeper in ``portal.process``) can import the ``portal`` package
cheaply.

The apps connect their own worker signals (the watcher of every kind's keepers
starts from ``ProcessesConfig.ready()``): the project package imports no app.
"""

from __future__ import annotations

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class QuietRoutine(logging.Filter):
    """Drop the INFO lines of the routine reconcile (sent by beat every few seconds).

    Without it they are most of the worker's and beat's output (hundreds of lines an
    hour) and hide what matters; a reconcile that fails is still logged, as an error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or ".reconcile_" not in record.getMessage()


for _name in ("celery.app.trace", "celery.worker.strategy", "celery.beat"):
    logging.getLogger(_name).addFilter(QuietRoutine())
