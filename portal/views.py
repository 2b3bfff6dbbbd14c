"""The dashboard and the health panel."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static

from portal import health, roles, summaries
from portal.models import AuditEntry


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    roles.require(roles.can_view(request.user), "Your account has no role: ask an administrator.")
    context = {
        "tiles": summaries.tiles(),
        "changes": AuditEntry.objects.select_related("actor")[:10],
    }
    return render(request, "portal/dashboard.html", context)


@login_required
def health_panel(request: HttpRequest) -> HttpResponse:
    """Broker and workers. Loaded after the dashboard (asking workers takes up to a second)."""
    roles.require(roles.can_view(request.user), "Your account has no role: ask an administrator.")
    template = "portal/htmx/health.html" if request.htmx else "portal/health.html"
    return render(request, template, {"health": health.check()})


def favicon(request: HttpRequest) -> HttpResponse:
    """The icon from the static files; resolved per request, as the hashed name exists only after collectstatic."""
    return redirect(static("favicon.ico"))
