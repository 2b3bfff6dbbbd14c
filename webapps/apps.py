from django.apps import AppConfig


class WebappsConfig(AppConfig):
    name = "webapps"
    verbose_name = "Web applications"

    def ready(self) -> None:
        from processes.adapters import register
        from webapps.adapter import WebAppAdapter

        register(WebAppAdapter())
