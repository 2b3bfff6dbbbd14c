"""What the List, Edit and Delete pages of every kind share.

A kind's view checks the role (and finds the definition, with its own 403 and 404) and calls
these with its app's name (``gateways``, ``webapps``): the folder of its templates
(``list.html``, ``htmx/rows.html``, ``form.html``, ``confirm_delete.html``,
``htmx/delete_dialog.html``), the namespace of its URLs and the name of the list's rows; its
``services`` module saves and deletes (permission, "stop it first", history). The messages
name the kind by its adapter's label; the templates see the definition under the kind's name.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import capfirst

from processes import control, editing, services
from processes.adapters import adapter_of
from processes.models import STATE_CHOICES
from processes.state import SHOWN_STATE

LIST_PAGE_SIZE = 100


def list_page(request: HttpRequest, model: type, app: str, search: tuple[str, ...], **extra: Any) -> HttpResponse:
    """The list: a search over the ``search`` fields, a filter by the state shown, a page of rows;
    the State column's refresh (``?part=rows`` by htmx) gets only the table body."""
    query = request.GET.get("q", "").strip()
    state = request.GET.get("state", "")
    rows = model.objects.all()
    if query:
        match = Q()
        for field in search:
            match |= Q(**{f"{field}__icontains": query})
        rows = rows.filter(match)
    if state in dict(STATE_CHOICES):
        # By the state the rows show: a start on its way is under Starting, not Stopped.
        rows = rows.annotate(shown=SHOWN_STATE).filter(shown=state)
    # A page of definitions: a thousand rows with their buttons would take too long to draw.
    page = Paginator(rows, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("part", None)
    context = {
        app: page.object_list,
        "page": page,
        "query": query,
        "state": state,
        "states": STATE_CHOICES,
        "filtered": bool(query or state),
        "params": params.urlencode(),
        "total": model.objects.count() if (query or state) else page.paginator.count,
        **extra,
    }
    if request.htmx and request.GET.get("part") == "rows":
        return render(request, f"{app}/htmx/rows.html", context)
    return render(request, f"{app}/list.html", context)


def edit(request: HttpRequest, obj: Any, form_class: type, app: str) -> HttpResponse:
    """The edit form; a valid POST saves through the service (with "Save and restart", restarts it:
    processes.editing) and goes back to the definition's page."""
    kind = adapter_of(obj)
    form = form_class(request.POST or None, instance=obj)
    if request.method == "POST" and form.is_valid():
        try:
            saved = editing.save(form, request.user, then=request.POST.get("then", ""))
        except PermissionDenied as e:
            # Save and restart by one who may not restart: nothing saved, and what was typed stays on the page.
            form.add_error(None, str(e))
        except control.ControlError as e:
            message = str(e)
            if editing.restart_offered(request.user, obj):
                message += f" Or press Save and restart: the change is saved and {obj.name} restarted with it."
            form.add_error(None, message)
        else:
            if saved.not_restarted:
                messages.warning(request, saved.message)
            else:
                messages.success(request, saved.message)
            for warning in saved.warnings:
                messages.warning(request, warning)
            return redirect(obj)
    context = {"form": form, kind.kind: obj, "restart_offered": editing.restart_offered(request.user, obj)}
    return render(request, f"{app}/form.html", context)


def delete(request: HttpRequest, obj: Any, app: str) -> HttpResponse:
    """GET: the confirmation (a dialog for htmx), saying what blocks the delete; POST: delete it."""
    kind = adapter_of(obj)
    if request.method == "POST":
        try:
            services.delete_definition(obj, request.user)
        except control.ControlError as e:
            messages.error(request, str(e))
            return redirect(obj)
        messages.success(request, f"{capfirst(kind.label)} {obj.name} was deleted.")
        return redirect(f"{app}:list")
    template = f"{app}/htmx/delete_dialog.html" if request.htmx else f"{app}/confirm_delete.html"
    return render(request, template, {kind.kind: obj, "blocker": control.delete_blocker(obj)})
