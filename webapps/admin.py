from __future__ import annotations

from django.contrib import admin

from processes.admin import DefinitionAdmin, admin_form
from webapps.forms import WebAppForm
from webapps.models import WebApp


@admin.register(WebApp)
class WebAppAdmin(DefinitionAdmin):
    """Definitions change here only as on the pages: the same form (secret values never shown), the
    same service functions (permission, "stop it first", history). What the keeper reports is shown,
    never edited."""

    form = admin_form(WebAppForm)
    list_display = ["name_shown", "protocol", "engine", "directory", "state", "restart_policy", "changed_at"]
    search_fields = ["name", "directory"]
    list_filter = ["protocol", "engine", "debug"]
