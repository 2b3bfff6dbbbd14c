from typing import Any

from django.apps import AppConfig


def _start_watching(sender: object = None, **kwargs: Any) -> None:
    """In each worker's main process: follow this host's keepers (see gateways/watcher.py)."""
    from django.conf import settings

    from gateways.watcher import start_watcher

    start_watcher(settings.PORTAL_HOST_NAME)


def _stop_watching(sender: object = None, **kwargs: Any) -> None:
    from gateways.watcher import stop_watcher

    stop_watcher()


def _dashboard_summary() -> dict[str, Any]:
    from gateways.models import Gateway
    from gateways.state import states_summary

    return {"by_state": states_summary(), "count": Gateway.objects.count()}


class GatewaysConfig(AppConfig):
    name = "gateways"
    verbose_name = "Gateways"

    def ready(self) -> None:
        from celery.signals import worker_ready, worker_shutdown

        from gateways import cpf
        from portal import summaries

        # Celery sets Django up before the worker is ready, so these are connected in time;
        # in a web server or manage.py they never fire.
        worker_ready.connect(_start_watching, weak=False, dispatch_uid="gateways.watcher.start")
        worker_shutdown.connect(_stop_watching, weak=False, dispatch_uid="gateways.watcher.stop")
        summaries.register_summary("gateways", "gateways/_dashboard_tile.html", _dashboard_summary)
        cpf.register()  # CreateGateway, ModifyGateway, DeleteGateway in merge files (portal/cpf/)
