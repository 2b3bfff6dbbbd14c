"""The one page of web applications that other kinds do not have: the front's live figures.
The others (list, detail, edit...) are every kind's (processes/definition_views.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from processes.definition_views import DefinitionViews
from webapps import figures
from webapps.forms import WebAppForm

PAGES = DefinitionViews("webapp", WebAppForm)


@login_required
def webapp_figures(request: HttpRequest, name: str) -> HttpResponse:
    """The detail page's live figures, polled by htmx."""
    webapp = PAGES.get(request, name)
    return render(request, "webapps/htmx/figures.html", {"webapp": webapp, **figures.figures_context(webapp)})
