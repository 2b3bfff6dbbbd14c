from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from gateways import services
from gateways.forms import GatewayForm
from gateways.models import Gateway
from processes import control


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
class GatewayAdmin(admin.ModelAdmin):
    """Definitions change here only as on the pages: the same form, the same service
    functions (permission, "stop it first", history). What the keeper reports
    (state, pid, intent, run data) is shown, never edited."""

    form = AdminGatewayForm
    list_display = ["name", "type", "server", "port", "use_passphrase", "open", "state", "restart_policy",
                    "changed_at"]
    search_fields = ["name", "server"]
    list_filter = ["type", "restart_policy", "use_passphrase"]
    # The verifier is not editable (and so not shown); the form keeps the name once saved.
    readonly_fields = [
        "state", "state_changed_at", "pid", "pid_create_time", "run_host", "intent", "intent_at", "last_error",
        "startup", "last_seq", "created_at", "created_by", "changed_at", "changed_by",
    ]

    @admin.display(boolean=True, description="open to the network without a passphrase")
    def open(self, obj: Gateway) -> bool:
        return obj.open_to_network

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The bulk delete deletes rows without the service's checks.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request: HttpRequest, obj: Gateway, form: GatewayForm, change: bool) -> None:
        services.save_definition(form, request.user)

    def delete_model(self, request: HttpRequest, obj: Gateway) -> None:
        services.delete_definition(obj, request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except control.ControlError as e:
            # The state changed between the form's check and the save.
            self.message_user(request, str(e), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):  # type: ignore[no-untyped-def]
        try:
            return super().delete_view(request, object_id, extra_context)
        except control.ControlError as e:
            self.message_user(request, str(e), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:gateways_gateway_change", args=[object_id]))
