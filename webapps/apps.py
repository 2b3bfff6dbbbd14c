from django.apps import AppConfig


class WebappsConfig(AppConfig):
    name = "webapps"
    verbose_name = "Web applications"

    def ready(self) -> None:
        from processes.adapters import register
        from webapps import routing
        from webapps.adapter import WebAppAdapter

        register(WebAppAdapter())
        # A saved or deleted definition rewrites the front's routes file (on commit).
        routing.connect()
