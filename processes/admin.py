"""The read-only admin of runs and activity, of every kind of managed process."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from portal import roles
from portal.templatetags.layout import breakable
from processes import control, services
from processes.adapters import adapter_for, all_adapters, kinds_text
from processes.models import STATE_CHOICES, Activity, Run


class StoppedFirst:
    """Mixed into a kind's form for the admin: before Save, the pages' rule that a running
    definition's runtime fields change only once it is stopped. The service checks it again when it
    saves (the state may change in between); this shows it beside the form. A form whose secret is
    a field of no model column (a gateway's passphrase) says so in ``secret_changed``."""

    def secret_changed(self) -> list[str]:
        return []

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if self.instance.pk is None or self.errors:  # type: ignore[attr-defined]
            return
        after = self.instance  # type: ignore[attr-defined]
        current = type(after).objects.get(pk=after.pk)
        changed = [f for f in type(after).AUDITED_FIELDS if getattr(current, f) != getattr(after, f)]
        try:
            control.check_definition_change(current, [*changed, *self.secret_changed()])
        except control.ControlError as e:
            self.add_error(None, str(e))  # type: ignore[attr-defined]


def admin_form(form_class: type) -> type:
    """``form_class`` (a kind's form) with the admin's check before Save (:class:`StoppedFirst`)."""
    return type(f"Admin{form_class.__name__}", (StoppedFirst, form_class), {})


class DefinitionAdmin(admin.ModelAdmin):
    """The admin of a kind's definitions: changes go through processes/services.py, as on the pages
    (permission, "stop it first", history); what the keeper reports is shown, never edited. A
    subclass sets ``form = admin_form(ItsForm)``."""
    list_display_links = ["name_shown"]
    readonly_fields = [
        "state", "state_changed_at", "pid", "pid_create_time", "run_host", "intent", "intent_at", "last_error",
        "startup", "last_seq", "created_at", "created_by", "changed_at", "changed_by",
    ]

    @admin.display(description="name", ordering="name")
    def name_shown(self, obj: Any) -> SafeString:
        # A name breaks at its separators, not mid-word nor wider than the window (portal.templatetags.layout).
        return breakable(obj.name)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The bulk delete deletes rows without the service's checks.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.save_definition(form, request.user)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
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
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))


# Runs and activity: the audit of what processes did. Read-only in the admin as
# on the pages; the tables grow without bound, so no changelist counts them all
# and no filter asks the database for the distinct values of a big column.

MACHINE_TRIGGERS = ("auto-restart", "reconcile", "keeper")


class ReadOnlyAuditAdmin(admin.ModelAdmin):
    show_full_result_count = False  # the paginator's one count is enough on a million rows
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # The roles grant the kinds' view permissions (gateways.view_gateway), not view_run/view_activity:
        # whoever may read the activity pages may read these in the admin too.
        return roles.can_view(request.user) or super().has_view_permission(request, obj)


class NameFilter(admin.AllValuesFieldListFilter):
    """The names, titled by the kinds ("By gateway name")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = f"{kinds_text('or')} name"


class KindFilter(admin.SimpleListFilter):
    """The registered kinds, not SELECT DISTINCT over every row."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(k.kind, k.label) for k in all_adapters()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(kind=self.value()) if self.value() else queryset


def when(value: Any) -> SafeString | str:
    """A time as its date over its time of day: a changelist of runs has three of them, and on one
    line each they alone make the table wider than a laptop's window (the date never breaks at its
    hyphens)."""
    if value is None:
        return "—"
    value = timezone.localtime(value)
    return format_html('<span class="nowrap">{}</span> <span class="nowrap">{}</span>',
                       f"{value:%Y-%m-%d}", f"{value:%H:%M:%S}")


def kind_label(kind: str) -> str:
    """The kind as the filter and the pages name it ("web application"), not its key ("webapp")."""
    try:
        return adapter_for(kind).label
    except LookupError:  # the rows of a kind no longer installed keep their key
        return kind


@admin.register(Run)
class RunAdmin(ReadOnlyAuditAdmin):
    # The trigger names who asked ("ada", "cli:root", "auto-restart"); the account is a filter.
    list_display = (
        "name", "kind_shown", "trigger", "host", "pid", "started", "ready", "stopped", "duration_seconds", "outcome",
        "exit",
    )
    list_filter = (KindFilter, ("name", NameFilter), "requested_by", "outcome", "started_at")
    # No column shows the account (the trigger names it), so no join is needed.
    list_select_related = False
    search_fields = ("name", "trigger", "host")
    date_hierarchy = "started_at"

    @admin.display(description="kind", ordering="kind")
    def kind_shown(self, obj: Run) -> str:
        return kind_label(obj.kind)

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: Run) -> SafeString | str:
        return when(obj.started_at)

    @admin.display(description="ready", ordering="ready_at")
    def ready(self, obj: Run) -> SafeString | str:
        return when(obj.ready_at)

    @admin.display(description="stopped", ordering="stopped_at")
    def stopped(self, obj: Run) -> SafeString | str:
        return when(obj.stopped_at)

    @admin.display(description="duration")
    def duration_seconds(self, obj: Run) -> str:
        return "—" if obj.duration is None else f"{obj.duration:.1f} s"

    @admin.display(description="exit")
    def exit(self, obj: Run) -> str:
        return obj.exit_text or "—"


class ToStateFilter(admin.SimpleListFilter):
    """The states from the model's choices, not from SELECT DISTINCT over every row."""

    title = "to state"
    parameter_name = "to_state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(STATE_CHOICES)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Activity]) -> QuerySet[Activity]:
        return queryset.filter(to_state=self.value()) if self.value() else queryset


class TriggerFilter(admin.SimpleListFilter):
    """The machine triggers and the portal's users; a user also matches "api:<user>" and "cli:<user>"."""

    title = "trigger"
    parameter_name = "trigger"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        users = get_user_model().objects.order_by("username").values_list("username", flat=True)
        return [(t, t) for t in MACHINE_TRIGGERS] + [(u, u) for u in users]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Activity]) -> QuerySet[Activity]:
        value = self.value()
        if not value:
            return queryset
        if value in MACHINE_TRIGGERS:
            return queryset.filter(trigger=value)
        return queryset.filter(Q(trigger=value) | Q(trigger=f"api:{value}") | Q(trigger=f"cli:{value}"))


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAuditAdmin):
    list_display = (
        "when", "name", "kind_shown", "states", "pid", "port", "exit", "expected", "trigger", "level",
        "host", "message_shown",
    )
    list_filter = ("level", ToStateFilter, TriggerFilter, "at")
    # No foreign key is shown (the trigger names the user), so no join is needed.
    list_select_related = False
    search_fields = ("name", "trigger")
    # No date_hierarchy: on a million rows its list of years and months is a
    # scan of the whole table on every page; the "at" filter costs nothing.

    @admin.display(description="at", ordering="at")
    def when(self, obj: Activity) -> SafeString | str:
        return when(obj.at)

    @admin.display(description="kind", ordering="kind")
    def kind_shown(self, obj: Activity) -> str:
        return kind_label(obj.kind)

    @admin.display(description="message")
    def message_shown(self, obj: Activity) -> SafeString:
        return breakable(obj.message)

    @admin.display(description="from → to")
    def states(self, obj: Activity) -> str:
        return f"{obj.from_state or '—'} → {obj.to_state or '—'}"

    @admin.display(description="exit")
    def exit(self, obj: Activity) -> str:
        if obj.signal:
            return obj.signal
        return "" if obj.exit_code is None else f"exit {obj.exit_code}"
