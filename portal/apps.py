from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import signals  # noqa: F401  (connects the receivers)
        from portal.celery import app  # noqa: F401  (tasks are sent with the portal's app)
