from django.contrib import admin
from django.http import HttpRequest

from portal.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The history of definitions: read-only, as an audit trail must be."""

    list_display = ["at", "actor_name", "action", "object_type", "object_name", "summary"]
    list_filter = ["action", "object_type", "at"]
    search_fields = ["object_name", "actor_name"]
    date_hierarchy = "at"

    @admin.display(description="changes")
    def summary(self, obj: AuditEntry) -> str:
        parts = []
        for field, before, after, secret in obj.change_lines():
            parts.append(f"{field}: {secret}" if secret else f"{field}: {before!r} → {after!r}")
        return "; ".join(parts)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
