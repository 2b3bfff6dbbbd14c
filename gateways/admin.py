from django.contrib import admin

from gateways.models import Gateway


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "server", "port", "use_passphrase", "restart_policy", "changed_at"]
    search_fields = ["name", "server"]
    list_filter = ["type", "restart_policy", "use_passphrase"]
    # The verifier is not editable (and so not shown); changes of name are refused as on the pages.
    readonly_fields = ["created_at", "created_by", "changed_at", "changed_by"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["name"] if obj else fields
