from django.apps import AppConfig


class WebappsConfig(AppConfig):
    name = "webapps"
    verbose_name = "Web applications"

    def ready(self) -> None:
        from processes.adapters import register
        from processes.state import register_dashboard_tile
        from webapps import cpf, routing
        from webapps.adapter import WEBAPPS

        register(WEBAPPS)
        register_dashboard_tile("webapp")
        # A saved or deleted definition, or a state change, rewrites the front's routes file (on commit).
        routing.connect()
        cpf.register()  # CreateApplication, ModifyApplication, DeleteApplication in merge files (portal/cpf/)
