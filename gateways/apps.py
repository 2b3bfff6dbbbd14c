from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "gateways"
    verbose_name = "Gateways"

    def ready(self) -> None:
        from gateways import cpf
        from gateways.adapter import GatewayAdapter
        from processes.adapters import register
        from processes.state import register_dashboard_tile

        # The shared process layer (processes/) starts, stops, watches and audits gateways and
        # draws their pages through this adapter; its watcher starts from processes' own AppConfig.
        register(GatewayAdapter())
        register_dashboard_tile("gateway")
        cpf.register()  # CreateGateway, ModifyGateway, DeleteGateway in merge files (portal/cpf/)
