"""What the Edit and Delete pages of every kind share.

A kind's view finds the definition (with its own 403 and 404) and calls these with its app's
name (``gateways``, ``webapps``): the folder of its templates (``form.html``,
``confirm_delete.html``, ``htmx/delete_dialog.html``) and the namespace of its URLs; its
``services`` module saves and deletes (permission, "stop it first", history). The messages
name the kind by its adapter's label; the templates see the definition under the kind's name.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import capfirst

from processes import control
from processes.adapters import adapter_of


def edit(request: HttpRequest, obj: Any, form_class: type, services: ModuleType, app: str) -> HttpResponse:
    """The edit form; a valid POST saves through the service and goes back to the definition's page."""
    kind = adapter_of(obj)
    form = form_class(request.POST or None, instance=obj)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_definition(form, request.user)
        except control.ControlError as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"{capfirst(kind.label)} {obj.name} was saved.")
            for warning in form.warnings:
                messages.warning(request, warning)
            return redirect(obj)
    return render(request, f"{app}/form.html", {"form": form, kind.kind: obj})


def delete(request: HttpRequest, obj: Any, services: ModuleType, app: str) -> HttpResponse:
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
