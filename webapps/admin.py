from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from processes import control
from webapps import services
from webapps.forms import WebAppForm
from webapps.models import WebApp


class AdminWebAppForm(WebAppForm):
    """The pages' form, and before Save the pages' rule: a running application is stopped first
    (the service checks it again when it saves; this shows it beside the form)."""

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.instance.pk is None or self.errors:
            return
        current = WebApp.objects.get(pk=self.instance.pk)
        changed = [f for f in WebApp.AUDITED_FIELDS if getattr(current, f) != getattr(self.instance, f)]
        try:
            control.check_definition_change(current, changed)
        except control.ControlError as e:
            self.add_error(None, str(e))


@admin.register(WebApp)
class WebAppAdmin(admin.ModelAdmin):
    """Definitions change here only as on the pages: the same form (secret values never shown), the
    same service functions (permission, "stop it first", history). What the keeper reports is shown,
    never edited."""

    form = AdminWebAppForm
    list_display = ["name", "protocol", "engine", "directory", "state", "restart_policy", "changed_at"]
    search_fields = ["name", "directory"]
    list_filter = ["protocol", "engine", "debug"]
    readonly_fields = [
        "state", "state_changed_at", "pid", "pid_create_time", "run_host", "intent", "intent_at", "last_error",
        "startup", "last_seq", "created_at", "created_by", "changed_at", "changed_by",
    ]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The bulk delete deletes rows without the service's checks.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request: HttpRequest, obj: WebApp, form: WebAppForm, change: bool) -> None:
        services.save_definition(form, request.user)

    def delete_model(self, request: HttpRequest, obj: WebApp) -> None:
        services.delete_definition(obj, request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except control.ControlError as e:
            self.message_user(request, str(e), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):  # type: ignore[no-untyped-def]
        try:
            return super().delete_view(request, object_id, extra_context)
        except control.ControlError as e:
            self.message_user(request, str(e), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:webapps_webapp_change", args=[object_id]))
