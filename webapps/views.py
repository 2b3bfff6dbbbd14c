"""Pages for web application definitions: list, create, detail, edit, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from portal import audit, roles
from portal.process.states import RUNNING
from processes import control, control_views, definition_views, services
from processes.control_views import HTMX_STOP_POLLING
from webapps import adapter, figures
from webapps.forms import APP_CHECK_FIELDS, WebAppForm
from webapps.models import WebApp

NO_ROLE = "Your account has no role: ask an administrator."


def _get_webapp(request: HttpRequest, name: str, *, admin: bool = False) -> WebApp:
    """The application at /name, or 404; 403 when the user may not read (or change) it."""
    roles.require(roles.can_view(request.user), NO_ROLE)
    if admin:
        roles.require(roles.can_administer(request.user),
                      "Only an Administrator may change web application definitions.")
    return get_object_or_404(WebApp, name__iexact="/" + name.strip("/"))


def apps_origin(request: HttpRequest) -> str:
    """Where the front answers: the portal's own host name on the apps port (PORTAL_APPS_PORT)."""
    host = urlsplit("//" + request.get_host()).hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if request.is_secure() else "http"
    return f"{scheme}://{host}:{settings.PORTAL_APPS_PORT}"


@login_required
def webapp_list(request: HttpRequest) -> HttpResponse:
    roles.require(roles.can_view(request.user), NO_ROLE)
    return definition_views.list_page(request, WebApp, "webapps", ("name", "directory"),
                                      apps_origin=apps_origin(request))


def environment_rows(webapp: WebApp) -> list[tuple[str, str, bool]]:
    """(name, value, secret) for the page: a secret's value is never shown."""
    rows = [(k, v, False) for k, v in sorted((webapp.environment or {}).items())]
    rows += [(k, "", True) for k in sorted(webapp.secret_environment or {})]
    return rows


def live_context(webapp: WebApp) -> dict[str, Any]:
    """What the live panel of the detail page shows: the process's figures, the startup details
    and the log tail (the shared code: portal.process.logtail and the watcher's samples)."""
    from portal.process.logtail import tail
    from processes import charts
    from processes.watcher import read_metrics

    samples = read_metrics("webapp", webapp.pk) if webapp.state == RUNNING else []

    log = adapter.log_path(webapp)
    refused = adapter.log_file_problem(webapp)
    try:
        if refused is not None:
            log_lines, log_error = [], f"The log is not shown and the application will not start: {refused.message}."
        else:
            log_lines = tail(log, 100) if log.exists() else []
            log_error = "" if log.exists() else f"{log} does not exist yet: no start has written it."
            if not log.exists() and webapp.last_error.startswith("Start refused:"):
                log_error += " The last start was refused before the application ran: see Last start."
    except OSError as e:
        log_lines, log_error = [], f"{log} cannot be read: {e.strerror}."
    return {
        "samples": samples,
        "latest": samples[-1] if samples else None,
        "chart": charts.sparklines(samples),
        "log_lines": log_lines,
        "log_error": log_error,
        "log_path": log,
    }


@login_required
def webapp_detail(request: HttpRequest, name: str) -> HttpResponse:
    webapp = _get_webapp(request, name)
    history = audit.history_of(webapp).select_related("actor")[:50]
    context = {
        "webapp": webapp,
        "history": history,
        **audit.authorship(webapp),
        "environment": environment_rows(webapp),
        "apps_origin": apps_origin(request),
        **live_context(webapp),
        **figures.figures_context(webapp),
    }
    return render(request, "webapps/detail.html", context)


@login_required
def webapp_live(request: HttpRequest, name: str) -> HttpResponse:
    """The detail page's live panel: state, startup details and log tail."""
    webapp = _get_webapp(request, name)
    context = {"webapp": webapp, "apps_origin": apps_origin(request), "announce": request.GET.get("announce") == "1",
               **live_context(webapp)}
    return render(request, "webapps/htmx/live.html", context)


def _show_warnings(request: HttpRequest, form: WebAppForm) -> None:
    for warning in form.warnings:
        messages.warning(request, warning)


@login_required
@require_http_methods(["GET", "POST"])
def webapp_create(request: HttpRequest) -> HttpResponse:
    roles.require(roles.can_administer(request.user), "Only an Administrator may create web application definitions.")
    form = WebAppForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        webapp = services.save_definition(form, request.user)
        messages.success(request, f"Web application {webapp.name} was created.")
        _show_warnings(request, form)
        return redirect(webapp)
    return render(request, "webapps/form.html", {"form": form, "creating": True})


@login_required
@require_http_methods(["GET", "POST"])
def webapp_edit(request: HttpRequest, name: str) -> HttpResponse:
    webapp = _get_webapp(request, name, admin=True)
    return definition_views.edit(request, webapp, WebAppForm, "webapps")


@login_required
@require_POST
def webapp_validate(request: HttpRequest) -> HttpResponse:
    """Inline validation: the messages of one field, for htmx to swap in beside it."""
    roles.require(roles.can_administer(request.user), "Only an Administrator may edit web application definitions.")
    pk = request.POST.get("pk", "")
    instance = None
    if pk.isascii() and pk.isdigit() and len(pk) < 19:
        instance = WebApp.objects.filter(pk=int(pk)).first()
    field = request.headers.get("HX-Trigger-Name") or request.GET.get("field", "")
    form = WebAppForm(request.POST, instance=instance, check_app=field in APP_CHECK_FIELDS)
    form.is_valid()
    errors = form.errors.get(field, []) if field in form.fields else []
    warnings = list(form.field_warnings.get(field, [])) if field in form.fields else []
    problem = form.app_problem
    if field in APP_CHECK_FIELDS and problem is not None and problem.field != field:
        # The import check's answer concerns the field just changed too (e.g. the directory).
        errors = [*errors, problem.message]
    return render(request, "gateways/htmx/field_feedback.html",
                  {"errors": list(dict.fromkeys(errors)), "warnings": warnings, "field": field})


@login_required
@require_http_methods(["GET", "POST"])
def webapp_delete(request: HttpRequest, name: str) -> HttpResponse:
    return definition_views.delete(request, _get_webapp(request, name, admin=True), "webapps")


# Process control ------------------------------------------------------------------


@login_required
def webapp_row(request: HttpRequest, name: str) -> HttpResponse:
    """One list row, polled while a start or stop is in flight; 286 once it settles."""
    webapp = _get_webapp(request, name)
    return control_views.row(request, webapp, "webapps/htmx", apps_origin=apps_origin(request))


@login_required
@require_POST
def webapp_control(request: HttpRequest, name: str, action: str) -> HttpResponse:
    """Start, Stop or Restart: record the intent, send the task (processes.control), show the row polling."""
    webapp = _get_webapp(request, name)
    return control_views.control_request(request, webapp, action, "webapps/htmx", live_context,
                                         apps_origin=apps_origin(request))


@login_required
def webapp_figures(request: HttpRequest, name: str) -> HttpResponse:
    """The detail page's live figures, polled by htmx."""
    webapp = _get_webapp(request, name)
    return render(request, "webapps/htmx/figures.html", {"webapp": webapp, **figures.figures_context(webapp)})


@login_required
def webapp_activity(request: HttpRequest, name: str) -> HttpResponse:
    """The application's Activity page: the one page every kind shares (processes/activity_views.py)."""
    from processes import activity_views

    return activity_views.object_activity(request, _get_webapp(request, name))


@login_required
@require_http_methods(["GET", "POST"])
def webapp_install(request: HttpRequest, name: str) -> HttpResponse:
    """POST: ask the host's worker to install the engine that the start's check found missing; the
    request returns at once, the task records the outcome. GET: the install's status, polled while
    it runs; 286 once it is done."""
    if request.method == "GET":
        webapp = _get_webapp(request, name)
        response = render(request, "webapps/htmx/install.html", {"webapp": webapp})
        if (webapp.startup.get("install") or {}).get("state") != "installing":
            response.status_code = HTMX_STOP_POLLING
        return response
    webapp = _get_webapp(request, name, admin=True)
    try:
        control.request_install(webapp, request.user)
    except control.ControlError as e:
        messages.error(request, str(e))
    else:
        messages.info(request, f"Install of {webapp.engine_name} for {webapp.name} requested: its outcome shows "
                               "here and in the Activity.")
    return redirect(webapp)
