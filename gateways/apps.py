from typing import Any

from django.apps import AppConfig


def _dashboard_summary() -> dict[str, Any]:
    from gateways.models import Gateway
    from gateways.state import states_summary

    return {"by_state": states_summary(), "count": Gateway.objects.count()}


class GatewaysConfig(AppConfig):
    name = "gateways"
    verbose_name = "Gateways"

    def ready(self) -> None:
        from gateways import cpf
        from gateways.adapter import GatewayAdapter
        from portal import summaries
        from processes.adapters import register

        # The shared process layer (processes/) starts, stops, watches and audits gateways
        # through this adapter; its watcher starts from processes' own AppConfig.
        register(GatewayAdapter())
        summaries.register_summary("gateways", "gateways/_dashboard_tile.html", _dashboard_summary)
        cpf.register()  # CreateGateway, ModifyGateway, DeleteGateway in merge files (portal/cpf/)
