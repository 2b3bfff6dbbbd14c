"""The portal's Celery application.

Imported explicitly (``from portal.celery import app``) rather than from
``portal/__init__.py``, so that code which must run without Django or Celery
(the process keeper in ``portal.process``) can import the ``portal`` package
cheaply.

The apps connect their own worker signals (the gateways' watcher starts from
``GatewaysConfig.ready()``): the project package imports no app.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
