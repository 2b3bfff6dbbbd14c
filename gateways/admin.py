from __future__ import annotations

from django.contrib import admin

from gateways.forms import GatewayForm
from gateways.models import Gateway
from processes import control
from processes.admin import DefinitionAdmin


class AdminGatewayForm(GatewayForm):
    """The pages' form, and before Save the pages' rule: a running gateway is stopped first.

    The service layer checks the rule again when it saves (the state may change
    in between); this check only lets the admin show it beside the form.
    """

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.instance.pk is None or self.errors:
            return
        current = Gateway.objects.get(pk=self.instance.pk)
        changed = [f for f in Gateway.AUDITED_FIELDS if getattr(current, f) != getattr(self.instance, f)]
        if self.cleaned_data.get("passphrase"):
            changed.append("passphrase_verifier")
        try:
            control.check_definition_change(current, changed)
        except control.ControlError as e:
            self.add_error(None, str(e))


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
