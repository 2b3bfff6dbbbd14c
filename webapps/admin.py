from __future__ import annotations

from django.contrib import admin

from processes import control
from processes.admin import DefinitionAdmin
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
class WebAppAdmin(DefinitionAdmin):
    """Definitions change here only as on the pages: the same form (secret values never shown), the
    same service functions (permission, "stop it first", history). What the keeper reports is shown,
    never edited."""

    form = AdminWebAppForm
    list_display = ["name_shown", "protocol", "engine", "directory", "state", "restart_policy", "changed_at"]
    search_fields = ["name", "directory"]
    list_filter = ["protocol", "engine", "debug"]
