import logging

from django.apps import AppConfig

log = logging.getLogger("portal.security")


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import (
            paths,
            signals,  # noqa: F401  (connects the receivers)
        )
        from portal.celery import app  # noqa: F401  (tasks are sent with the portal's app)

        # In every process (web server, worker, manage.py): var/ must be readable
        # by the portal's user only; anything looser, from an older version or a
        # hand-made copy, is fixed now and said.
        for line in paths.fix_modes():
            log.warning("%s", line)
