from __future__ import annotations

from django.contrib import admin

from processes import control
from processes.admin import DefinitionAdmin
from programs.forms import ProgramForm
from programs.models import Program


class AdminProgramForm(ProgramForm):
    """The form of the CLI and the API, and before Save their rule: a running program is stopped first
    (the service checks it again when it saves; this shows it beside the form)."""

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.instance.pk is None or self.errors:
            return
        current = Program.objects.get(pk=self.instance.pk)
        changed = [f for f in Program.AUDITED_FIELDS if getattr(current, f) != getattr(self.instance, f)]
        try:
            control.check_definition_change(current, changed)
        except control.ControlError as e:
            self.add_error(None, str(e))


@admin.register(Program)
class ProgramAdmin(DefinitionAdmin):
    """Definitions change here only as through the CLI and the API: the same form (secret values never
    shown), the same service functions (permission, "stop it first", history). What the keeper
    reports is shown, never edited."""

    form = AdminProgramForm
    list_display = ["name_shown", "command", "probe", "state", "restart_policy", "changed_at"]
    search_fields = ["name", "command"]
    list_filter = ["probe", "restart_policy", "stop_signal"]
