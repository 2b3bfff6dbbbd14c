"""The dashboard and the health panel."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static

from portal import health, roles, summaries
from portal.models import AuditEntry, model_named


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    roles.require(roles.can_view(request.user), "Your account has no role: ask an administrator.")
    context = {
        "tiles": summaries.tiles(),
        "changes": latest_changes(5),
    }
    return render(request, "portal/dashboard.html", context)


def latest_changes(count: int) -> list[AuditEntry]:
    """The last ``count`` entries, each with ``url``: its definition's page, where the full history
    is ("" once the definition is deleted). One query per kind of definition, not one per entry."""
    entries = list(AuditEntry.objects.all()[:count])
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        wanted.setdefault(entry.object_type, set()).add(entry.object_id)
    found = {}
    for object_type, ids in wanted.items():
        model = model_named(object_type)
        if model is not None:
            found.update({(object_type, pk): obj for pk, obj in model._default_manager.in_bulk(ids).items()})
    for entry in entries:
        obj = found.get((entry.object_type, entry.object_id))
        entry.url = obj.get_absolute_url() + "#history" if obj is not None else ""
    return entries


@login_required
def health_panel(request: HttpRequest) -> HttpResponse:
    """Broker and workers. Loaded after the dashboard (asking workers takes up to a second)."""
    roles.require(roles.can_view(request.user), "Your account has no role: ask an administrator.")
    template = "portal/htmx/health.html" if request.htmx else "portal/health.html"
    return render(request, template, {"health": health.check()})


def favicon(request: HttpRequest) -> HttpResponse:
    """The icon from the static files; resolved per request, as the hashed name exists only after collectstatic."""
    return redirect(static("favicon.ico"))
