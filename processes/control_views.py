"""What the list row and the Start, Stop and Restart buttons of every kind's pages share.

A kind's view finds the object (with its own 403 and 404) and calls these with the folder of
its htmx templates (``row.html``, ``live.html``); the template sees the object under the
kind's name (``gateway``, ``webapp``), as the kind's own pages do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from processes import control
from processes.adapters import adapter_of

# htmx stops polling when a response has this status (and still swaps it in).
HTMX_STOP_POLLING = 286


def row(request: HttpRequest, obj: Any, templates: str, **extra: Any) -> HttpResponse:
    """One list row, polled while a start or stop is in flight; 286 once it settles."""
    context = {adapter_of(obj).kind: obj, "announce": request.GET.get("announce") == "1", **extra}
    response = render(request, f"{templates}/row.html", context)
    if not obj.in_transition:
        response.status_code = HTMX_STOP_POLLING
    return response


def control_request(
    request: HttpRequest, obj: Any, action: str, templates: str,
    live_context: Callable[[Any], dict[str, Any]], **extra: Any,
) -> HttpResponse:
    """Start, Stop or Restart: record the intent, send the task, show the row (or the detail
    page's live panel) polling; without htmx, a message and back to the object's page."""
    kind = adapter_of(obj).kind
    try:
        obj = control.request(obj, action, request.user)
    except control.ControlError as e:
        if request.htmx:
            return render(request, f"{templates}/row.html", {kind: obj, "error": str(e), **extra})
        messages.error(request, str(e))
        return redirect(obj)
    if request.htmx:
        detail = request.POST.get("from", "list") == "detail"
        context = {kind: obj, "announce": True, **extra, **(live_context(obj) if detail else {})}
        return render(request, f"{templates}/{'live' if detail else 'row'}.html", context)
    messages.info(request, f"{action.capitalize()} of {obj.name} requested.")
    return redirect(obj)
