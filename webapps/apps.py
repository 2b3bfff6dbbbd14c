from typing import Any

from django.apps import AppConfig


def _dashboard_summary() -> dict[str, Any]:
    from django.db.models import Count

    from processes.state import LABELS, ORDER, SHOWN_STATE
    from webapps.models import WebApp

    # Counted by the state shown, as the gateways' tile does: one query.
    rows = WebApp.objects.annotate(shown=SHOWN_STATE).values("shown").annotate(n=Count("pk"))
    counts = {row["shown"]: row["n"] for row in rows}
    return {"by_state": [(s, LABELS[s], counts[s]) for s in ORDER if counts.get(s)], "count": sum(counts.values())}


class WebappsConfig(AppConfig):
    name = "webapps"
    verbose_name = "Web applications"

    def ready(self) -> None:
        from portal import summaries
        from processes.adapters import register
        from webapps import cpf, routing
        from webapps.adapter import WebAppAdapter

        register(WebAppAdapter())
        summaries.register_summary("webapps", "webapps/_dashboard_tile.html", _dashboard_summary)
        # A saved or deleted definition, or a state change, rewrites the front's routes file (on commit).
        routing.connect()
        cpf.register()  # CreateApplication, ModifyApplication, DeleteApplication in merge files (portal/cpf/)
