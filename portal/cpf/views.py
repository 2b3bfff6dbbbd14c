"""The merge page, the export download and POST /api/cpf/merge."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from portal import roles
from portal.api import ApiError, api_view
from portal.cpf import merge, registry
from portal.cpf.parser import MAX_FILE_BYTES, MergeFileError, decode, too_large

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


def _uploaded_text(request: HttpRequest) -> str:
    upload = request.FILES.get("file")
    if upload is None:
        return request.POST.get("text", "")
    if upload.size > MAX_FILE_BYTES:
        raise MergeFileError(too_large(upload.name, upload.size))
    text = decode(upload.read())
    return text[1:] if text.startswith("\ufeff") else text


@login_required
@require_http_methods(["GET", "POST"])
def merge_page(request: HttpRequest) -> HttpResponse:
    """Paste or upload a merge file, preview what it changes, then apply it."""
    roles.require(roles.can_administer(request.user), "Only an Administrator may merge definitions.")
    context: dict[str, Any] = {"text": "", "restart": False, "kinds": registry.kinds()}
    if request.method == "POST":
        apply = request.POST.get("action") == "apply"
        context["restart"] = request.POST.get("restart") == "on"
        try:
            text = _uploaded_text(request)
        except MergeFileError as e:
            messages.error(request, str(e))
            return render(request, "portal/cpf/merge.html", context, status=400)
        context["text"] = text
        if not text.strip():
            messages.error(request, "The merge file is empty: paste its text or choose a file.")
            return render(request, "portal/cpf/merge.html", context, status=400)
        result = merge.merge(text, request.user, apply=apply, restart=context["restart"])
        context.update(result=result, applied=result.applied, previewed=not apply)
        if result.applied:
            messages.success(request, f"Merged: {result.summary}.")
            if result.restarted:
                messages.info(request, "Started again: " + ", ".join(result.restarted) + ".")
        status = 400 if result.problems else 200
        return render(request, "portal/cpf/merge.html", context, status=status)
    return render(request, "portal/cpf/merge.html", context)


@login_required
@require_GET
def export_download(request: HttpRequest) -> HttpResponse:
    """The definitions as a merge file, for download (?kind=gateways for one kind)."""
    roles.require(roles.can_view(request.user), "Your account has no role: ask an administrator.")
    wanted = request.GET.get("kind", "")
    chosen = None
    if wanted:
        kind = registry.kind_named(wanted)
        if kind is None:
            names = ", ".join(k.plural for k in registry.kinds())
            return HttpResponse(f"There is no kind {wanted}: use kind= one of {names}, or leave it out.\n",
                                status=400, content_type="text/plain; charset=utf-8")
        chosen = [kind]
    response = HttpResponse(merge.export(chosen), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{wanted or "definitions"}.cpf"'
    return response


def _flag(request: HttpRequest, name: str) -> bool:
    value = request.GET.get(name, "").strip().lower()
    if value not in TRUE_WORDS | FALSE_WORDS:
        raise ApiError(400, f"{name}={value} is not understood: use {name}=1, or leave it out.")
    return value in TRUE_WORDS


def _body(request: HttpRequest) -> bytes:
    """The body, up to MAX_FILE_BYTES: read from the stream, because request.body refuses anything
    over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB, less than a merge file may have) with a bare 400."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_FILE_BYTES:
        raise ApiError(413, too_large("The body", length))
    data = request.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ApiError(413, too_large("The body", len(data)))
    return data


@api_view("POST")
def api_merge(request: HttpRequest, user: Any) -> JsonResponse:
    """POST the merge file as the body (or as the multipart field ``file``): a dry run unless
    ?apply=1; ?restart=1 restarts running definitions whose runtime fields change."""
    apply, restart = _flag(request, "apply"), _flag(request, "restart")
    merge.require_admin(user)
    try:
        if request.content_type == "multipart/form-data":
            text = _uploaded_text(request)
        else:
            text = decode(_body(request))
    except MergeFileError as e:
        raise ApiError(400, str(e)) from None
    if not text.strip():
        raise ApiError(400, "The body is empty: send the merge file as the request body.")
    result = merge.merge(text, user, apply=apply, restart=restart)
    body = {**result.as_dict(), "dry_run": not apply}
    if result.problems:
        raise ApiError(400, f"Nothing was changed: {len(result.problems)} problem(s); fix the lines named "
                            "in problems and send the file again.", **body)
    return JsonResponse(body)
