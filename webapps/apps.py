from django.apps import AppConfig


class WebappsConfig(AppConfig):
    name = "webapps"
    verbose_name = "Web applications"

    def ready(self) -> None:
        from processes.adapters import register
        from webapps import cpf
        from webapps.adapter import WebAppAdapter

        register(WebAppAdapter())
        cpf.register()  # CreateApplication, ModifyApplication, DeleteApplication in merge files (portal/cpf/)
