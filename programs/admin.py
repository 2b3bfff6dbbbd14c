from __future__ import annotations

from django.contrib import admin

from processes.admin import DefinitionAdmin, admin_form
from programs.forms import ProgramForm
from programs.models import Program


@admin.register(Program)
class ProgramAdmin(DefinitionAdmin):
    """Definitions change here only as through the CLI and the API: the same form (secret values never
    shown), the same service functions (permission, "stop it first", history). What the keeper
    reports is shown, never edited."""

    form = admin_form(ProgramForm)
    list_display = ["name_shown", "command", "probe", "state", "restart_policy", "changed_at"]
    search_fields = ["name", "command"]
    list_filter = ["probe", "restart_policy", "stop_signal"]
