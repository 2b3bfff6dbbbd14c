"""Pages for gateway definitions: list, create, detail, edit, delete."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gateways import runtime
from gateways.forms import GatewayForm
from gateways.models import Gateway
from portal import audit, roles
from portal.process.states import RUNNING
from processes import charts, control, control_views, definition_views, services
from processes.control_views import HTMX_STOP_POLLING


def _get_gateway(request: HttpRequest, name: str, *, admin: bool = False) -> Gateway:
    """The named gateway, or 404; 403 when the user may not read (or change) it."""
    roles.require(roles.can_view(request.user), "Your account has no role: ask an administrator.")
    if admin:
        roles.require(
            roles.can_administer(request.user),
            "Only an Administrator may change gateway definitions.",
        )
    return get_object_or_404(Gateway, name=name)


@login_required
def gateway_list(request: HttpRequest) -> HttpResponse:
    roles.require(roles.can_view(request.user), "Your account has no role: ask an administrator.")
    return definition_views.list_page(request, Gateway, "gateways", ("name", "server"))


@login_required
@require_GET
def gateway_activity(request: HttpRequest, name: str) -> HttpResponse:
    """The gateway's Activity page: the one page every kind shares (processes/activity_views.py)."""
    from processes import activity_views

    roles.require(roles.can_view(request.user), activity_views.NO_ROLE)
    return activity_views.object_activity(request, get_object_or_404(Gateway, name=name))


@login_required
def gateway_detail(request: HttpRequest, name: str) -> HttpResponse:
    gateway = _get_gateway(request, name)
    history = audit.history_of(gateway).select_related("actor")[:50]
    context = {
        "gateway": gateway,
        "history": history,
        **audit.authorship(gateway),
        **live_context(gateway),
    }
    return render(request, "gateways/detail.html", context)


def _show_warnings(request: HttpRequest, form: GatewayForm) -> None:
    for warning in form.warnings:
        messages.warning(request, warning)


@login_required
@require_http_methods(["GET", "POST"])
def gateway_create(request: HttpRequest) -> HttpResponse:
    roles.require(
        roles.can_administer(request.user), "Only an Administrator may create gateway definitions."
    )
    form = GatewayForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        gateway = services.save_definition(form, request.user)
        messages.success(request, f"Gateway {gateway.name} was created.")
        _show_warnings(request, form)
        return redirect("gateways:list")
    return render(request, "gateways/form.html", {"form": form, "creating": True})


@login_required
@require_http_methods(["GET", "POST"])
def gateway_edit(request: HttpRequest, name: str) -> HttpResponse:
    gateway = _get_gateway(request, name, admin=True)
    return definition_views.edit(request, gateway, GatewayForm, "gateways")


@login_required
@require_POST
def gateway_validate(request: HttpRequest) -> HttpResponse:
    """Inline validation: the errors of one field, for htmx to swap in beside it."""
    roles.require(
        roles.can_administer(request.user), "Only an Administrator may edit gateway definitions."
    )
    # The page posts the edited definition's id; anything else (1e309, NaN, 0x1F) finds none.
    pk = request.POST.get("pk", "")
    instance = None
    if pk.isascii() and pk.isdigit() and len(pk) < 19:
        instance = Gateway.objects.filter(pk=int(pk)).first()
    form = GatewayForm(request.POST, instance=instance)
    field = request.headers.get("HX-Trigger-Name") or request.GET.get("field", "")
    form.is_valid()
    errors = form.errors.get(field, []) if field in form.fields else []
    warnings = list(form.field_warnings.get(field, [])) if field in form.fields else []
    if field in {"server", "use_passphrase"}:
        # Warnings of the whole definition (e.g. every address without a passphrase).
        bound = [w for ws in form.field_warnings.values() for w in ws]
        warnings += [w for w in form.warnings if w not in bound]
    return render(
        request,
        "gateways/htmx/field_feedback.html",
        {"errors": errors, "warnings": warnings, "field": field},
    )


@login_required
@require_http_methods(["GET", "POST"])
def gateway_delete(request: HttpRequest, name: str) -> HttpResponse:
    return definition_views.delete(request, _get_gateway(request, name, admin=True), "gateways")


# Process control ------------------------------------------------------------


def live_context(gateway: Gateway) -> dict[str, Any]:
    """What the live panel of the detail page shows: OS figures and the log tail."""
    from portal.process.logtail import tail
    from processes.watcher import read_metrics

    samples = read_metrics("gateway", gateway.pk) if gateway.state == RUNNING else []
    log = runtime.log_path(gateway)
    refused = runtime.log_file_problem(gateway)
    try:
        if refused is not None:
            # A definition saved before the log folders were enforced: never shown.
            log_lines, log_error = [], f"The log is not shown and the gateway will not start: {refused.message}."
        else:
            log_lines = tail(log, 100) if log.exists() else []
            log_error = "" if log.exists() else f"{log} does not exist yet: it is created at the first start."
    except OSError as e:
        log_lines, log_error = [], f"{log} cannot be read: {e.strerror}."
    if gateway.run_host and gateway.run_host != settings.PORTAL_HOST_NAME:
        log_error = f"The log is on host {gateway.run_host}: {log}"
        log_lines = []
    return {
        "samples": samples,
        "latest": samples[-1] if samples else None,
        "chart": charts.sparklines(samples),
        "log_lines": log_lines,
        "log_error": log_error,
        "log_path": log,
    }


@login_required
def gateway_row(request: HttpRequest, name: str) -> HttpResponse:
    """One list row, polled while a start or stop is in flight; 286 once it settles."""
    return control_views.row(request, _get_gateway(request, name), "gateways/htmx")


@login_required
def gateway_live(request: HttpRequest, name: str) -> HttpResponse:
    """The detail page's live panel: state, startup, figures and log tail."""
    gateway = _get_gateway(request, name)
    return render(request, "gateways/htmx/live.html", {"gateway": gateway, **live_context(gateway)})


@login_required
@require_POST
def gateway_control(request: HttpRequest, name: str, action: str) -> HttpResponse:
    """Start, Stop or Restart: record the intent, send the task, show the row polling."""
    gateway = _get_gateway(request, name)
    return control_views.control_request(request, gateway, action, "gateways/htmx", live_context)


@login_required
@require_http_methods(["GET", "POST"])
def gateway_install(request: HttpRequest, name: str) -> HttpResponse:
    """POST: ask the host's worker to run the install command that a failed check named (e.g.
    pip install msgpack); the request returns at once, the task records the outcome.
    GET: the install's status for the detail page, polled while it runs; 286 once it is done."""
    if request.method == "GET":
        gateway = _get_gateway(request, name)
        response = render(request, "gateways/htmx/install.html", {"gateway": gateway})
        if (gateway.startup.get("install") or {}).get("state") != "installing":
            response.status_code = HTMX_STOP_POLLING
        return response
    gateway = _get_gateway(request, name, admin=True)
    try:
        control.request_install(gateway, request.user)
    except control.ControlError as e:
        messages.error(request, str(e))
    else:
        messages.info(request, f"Install of msgpack for {gateway.name} requested: it runs on host "
                               f"{runtime.host_of(gateway)}; its outcome shows here and in the Activity.")
    return redirect(gateway)
