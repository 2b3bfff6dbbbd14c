"""Pages for gateway definitions: list, create, detail, edit, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from gateways import services
from gateways.forms import GatewayForm
from gateways.models import Gateway
from portal import audit, roles


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
    gateways = Gateway.objects.all()
    return render(request, "gateways/list.html", {"gateways": gateways})


@login_required
def gateway_detail(request: HttpRequest, name: str) -> HttpResponse:
    gateway = _get_gateway(request, name)
    history = audit.history_of(gateway).select_related("actor")[:50]
    return render(request, "gateways/detail.html", {"gateway": gateway, "history": history})


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
    form = GatewayForm(request.POST or None, instance=gateway)
    if request.method == "POST" and form.is_valid():
        services.save_definition(form, request.user)
        messages.success(request, f"Gateway {gateway.name} was saved.")
        _show_warnings(request, form)
        return redirect(gateway)
    return render(request, "gateways/form.html", {"form": form, "gateway": gateway})


@login_required
@require_POST
def gateway_validate(request: HttpRequest) -> HttpResponse:
    """Inline validation: the errors of one field, for htmx to swap in beside it."""
    roles.require(
        roles.can_administer(request.user), "Only an Administrator may edit gateway definitions."
    )
    instance = None
    if pk := request.POST.get("pk"):
        instance = Gateway.objects.filter(pk=pk).first()
    form = GatewayForm(request.POST, instance=instance)
    field = request.headers.get("HX-Trigger-Name") or request.GET.get("field", "")
    form.is_valid()
    errors = form.errors.get(field, []) if field in form.fields else []
    warnings = form.warnings if field in {"server", "use_passphrase"} else []
    return render(
        request,
        "gateways/htmx/field_feedback.html",
        {"errors": errors, "warnings": warnings, "field": field},
    )


@login_required
@require_http_methods(["GET", "POST"])
def gateway_delete(request: HttpRequest, name: str) -> HttpResponse:
    gateway = _get_gateway(request, name, admin=True)
    if request.method == "POST":
        services.delete_definition(gateway, request.user)
        messages.success(request, f"Gateway {gateway.name} was deleted.")
        return redirect("gateways:list")
    template = "gateways/htmx/delete_dialog.html" if request.htmx else "gateways/confirm_delete.html"
    return render(request, template, {"gateway": gateway})
