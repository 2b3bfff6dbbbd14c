from __future__ import annotations

from django.contrib import admin

from gateways.forms import GatewayForm
from gateways.models import Gateway
from processes.admin import DefinitionAdmin, StoppedFirst


class AdminGatewayForm(StoppedFirst, GatewayForm):
    """The pages' form with the admin's check before Save; a new passphrase changes the verifier."""

    def secret_changed(self) -> list[str]:
        return ["passphrase_verifier"] if self.cleaned_data.get("passphrase") else []


@admin.register(Gateway)
class GatewayAdmin(DefinitionAdmin):
    """Definitions change here only as on the pages: the same form, the same service
    functions (permission, "stop it first", history). What the keeper reports
    (state, pid, intent, run data) is shown, never edited."""

    # The verifier is not editable (and so not shown); the form keeps the name once saved.
    form = AdminGatewayForm
    list_display = ["name_shown", "type", "server", "port", "use_passphrase", "open", "state", "restart_policy",
                    "changed_at"]
    search_fields = ["name", "server"]
    list_filter = ["type", "restart_policy", "use_passphrase"]

    @admin.display(boolean=True, description="open to the network without a passphrase")
    def open(self, obj: Gateway) -> bool:
        return obj.open_to_network
