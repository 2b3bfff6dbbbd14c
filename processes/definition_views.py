"""One set of pages for every kind of definition: list, detail, live panel, row, Start/Stop/Restart,
install, Activity, create, edit, inline validation and delete.

As NetBox keeps one set of generic views for every model, a kind has no view of its own for
these: its URLs (``definition_urls``) serve the views of a :class:`DefinitionViews` made for its
adapter, and the adapter says what differs (processes/adapters.py: ``app``, ``form_class()``,
the search, ``describe``, ``page_context``, ``detail_context``, ``open_url``, the log). The
templates are in templates/processes/definitions/; where a kind shows something of its own (a
gateway's passphrase, a web application's engine) it puts a template of the same name in its
app's folder (``gateways/_definition.html``), which is used instead (:meth:`DefinitionViews.templates`).

Every view checks the role first (403 with what to ask for), then finds the definition by its
URL (``Definition.lookup``: 404), so that a user without a role learns nothing of what exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import select_template
from django.urls import URLPattern, path, re_path
from django.utils.text import capfirst
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal import audit, roles
from portal.process.states import RUNNING
from processes import charts, control, editing, services
from processes.adapters import ProcessAdapter
from processes.kinds import adapter_for
from processes.models import STATE_CHOICES
from processes.state import SHOWN_STATE

LIST_PAGE_SIZE = 100
# htmx stops polling when a response has this status (and still swaps it in).
HTMX_STOP_POLLING = 286
NO_ROLE = "Your account has no role: ask an administrator."
# The fragments a kind may replace with a template of its own (in its app's folder).
FRAGMENTS = ("_list_head.html", "_row_cells.html", "_badges.html", "_definition.html", "_form_fields.html",
             "_delete_body.html", "_detail_extra.html", "_status_extra.html", "_start_extra.html", "_live_extra.html")


class DefinitionViews:
    """The pages of one kind: ``DefinitionViews("gateway", GatewayForm)`` in its urls.py, with the
    form its definitions are made with (the pages', the CLI's, the API's and the merges' alike)."""

    def __init__(self, kind: str, form: type[forms.ModelForm]) -> None:
        self.kind_name = kind
        self.form = form

    @property
    def kind(self) -> ProcessAdapter:
        # Found at each request: an app's ready() may register its adapter again (tests do).
        return adapter_for(self.kind_name)

    # --- what every view does first -------------------------------------------------------------

    def get(self, request: HttpRequest, name: str, *, admin: bool = False) -> Any:
        """The definition a URL names, or 404; 403 when the user may not read (or change) it."""
        roles.require(roles.can_view(request.user), NO_ROLE)
        if admin:
            roles.require(roles.can_administer(request.user),
                          f"Only an Administrator may change {self.kind.label} definitions.")
        return get_object_or_404(self.kind.model, **self.kind.model.lookup(name))

    def templates(self) -> dict[str, Any]:
        """Each fragment: the kind's own template when it has one, else the shared one; found once
        per page rather than once per row (a list's page draws a hundred rows)."""
        app = self.kind.app
        return {name[1:-5]: select_template([f"{app}/{name}", f"processes/definitions/{name}"])
                for name in FRAGMENTS}

    def context(self, request: HttpRequest, obj: Any = None, **extra: Any) -> dict[str, Any]:
        """What every template of the kind gets: the adapter (``kind``), the fragments, the kind's
        page context, and the definition as ``obj`` and under its kind's name (``gateway``)."""
        kind = self.kind
        context = {"kind": kind, "fragment": self.templates(), "lead": kind.list_lead(request),
                   **kind.page_context(request)}
        if obj is not None:
            obj.open_url = kind.open_url(request, obj)
            context.update({"obj": obj, kind.kind: obj, "open_url": obj.open_url, "summary": kind.summary(obj)})
        context.update(extra)
        return context

    def render(self, request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
        return render(request, f"processes/definitions/{template}", context)

    # --- the list -------------------------------------------------------------------------------

    def list(self, request: HttpRequest) -> HttpResponse:
        """A search over the kind's search fields, a filter by the state shown, a page of rows; the
        State column's refresh (``?part=rows`` by htmx) gets only the table body."""
        roles.require(roles.can_view(request.user), NO_ROLE)
        model = self.kind.model
        query = request.GET.get("q", "").strip()
        state = request.GET.get("state", "")
        rows = model.objects.all()
        if query:
            match = Q()
            for field in self.kind.search_fields:
                match |= Q(**{f"{field}__icontains": query})
            rows = rows.filter(match)
        if state in dict(STATE_CHOICES):
            # By the state the rows show: a start on its way is under Starting, not Stopped.
            rows = rows.annotate(shown=SHOWN_STATE).filter(shown=state)
        # A page of definitions: a thousand rows with their buttons would take too long to draw.
        page = Paginator(rows, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
        params = request.GET.copy()
        params.pop("part", None)
        context = self.context(
            request,
            rows=self.with_open_urls(request, page.object_list),
            page=page,
            query=query,
            state=state,
            states=STATE_CHOICES,
            filtered=bool(query or state),
            params=params.urlencode(),
            total=model.objects.count() if (query or state) else page.paginator.count,
        )
        context[self.kind.app] = context["rows"]
        if request.htmx and request.GET.get("part") == "rows":
            return self.render(request, "htmx/rows.html", context)
        return self.render(request, "list.html", context)

    def with_open_urls(self, request: HttpRequest, objs: Any) -> list[Any]:
        """The rows, each with its ``open_url`` (what the row's Open link opens)."""
        rows = list(objs)
        for obj in rows:
            obj.open_url = self.kind.open_url(request, obj)
        return rows

    # --- one definition -------------------------------------------------------------------------

    def live_context(self, obj: Any) -> dict[str, Any]:
        """What the live panel shows: the process's figures (the watcher's samples), the last
        start and the log's tail (read by the worker of the host it runs on, processes/logs.py)."""
        from processes.logs import tail_of
        from processes.watcher import read_metrics

        kind = self.kind
        samples = read_metrics(kind.kind, obj.pk) if obj.state == RUNNING else []
        log_lines, log_error, log = tail_of(kind, obj)
        plan = kind.install_of(obj)
        startup = obj.startup or {}
        return {
            "samples": samples,
            "latest": samples[-1] if samples else None,
            "chart": charts.sparklines(samples),
            "log_lines": log_lines,
            "log_error": log_error,
            "log_path": log,
            # The install button beside a refused start that an install answers (msgpack, an engine).
            "install_offered": bool(plan and startup.get("fix_argv") and startup.get("check") == plan.refusal),
            "describe": kind.describe(obj),
        }

    def detail(self, request: HttpRequest, name: str) -> HttpResponse:
        obj = self.get(request, name)
        context = self.context(
            request, obj,
            history=audit.history_of(obj).select_related("actor")[:50],
            own_fields=own_fields(obj),
            **audit.authorship(obj),
            **self.live_context(obj),
            **self.kind.detail_context(request, obj),
        )
        return self.render(request, "detail.html", context)

    def live(self, request: HttpRequest, name: str) -> HttpResponse:
        """The detail page's live panel: state, last start, figures and log tail."""
        obj = self.get(request, name)
        context = self.context(request, obj, announce=request.GET.get("announce") == "1", **self.live_context(obj))
        return self.render(request, "htmx/live.html", context)

    def row(self, request: HttpRequest, name: str) -> HttpResponse:
        """One list row, polled while a start or stop is in flight; 286 once it settles."""
        obj = self.get(request, name)
        response = self.render_row(request, obj, announce=request.GET.get("announce") == "1")
        if not obj.in_transition:
            response.status_code = HTMX_STOP_POLLING
        return response

    def render_row(self, request: HttpRequest, obj: Any, **extra: Any) -> HttpResponse:
        return self.render(request, "htmx/row.html", self.context(request, obj, **extra))

    def control(self, request: HttpRequest, name: str, action: str) -> HttpResponse:
        """Start, Stop or Restart: record the intent, send the task, show the row (or the detail
        page's live panel) polling; without htmx, a message and back to the definition's page."""
        obj = self.get(request, name)
        host = request.POST.get("host", "").strip() or None  # one host of a definition that runs on several
        try:
            obj = control.request(obj, action, request.user, host=host)
        except control.ControlError as e:
            if request.htmx:
                return self.render_row(request, obj, error=str(e))
            messages.error(request, str(e))
            return redirect(obj)
        if not request.htmx:
            where = f" on {host}" if host else ""
            messages.info(request, f"{action.capitalize()} of {obj.name}{where} requested.")
            return redirect(obj)
        if request.POST.get("from", "list") == "detail":
            context = self.context(request, obj, announce=True, **self.live_context(obj))
            return self.render(request, "htmx/live.html", context)
        return self.render_row(request, obj, announce=True)

    def install(self, request: HttpRequest, name: str) -> HttpResponse:
        """POST: ask the host's worker to run the install that a refused start named (e.g. pip
        install msgpack); the request returns at once, the task records the outcome. GET: the
        install's status for the detail page, polled while it runs; 286 once it is done."""
        if request.method == "GET":
            obj = self.get(request, name)
            response = self.render(request, "htmx/install.html", self.context(request, obj))
            if (obj.startup.get("install") or {}).get("state") != "installing":
                response.status_code = HTMX_STOP_POLLING
            return response
        obj = self.get(request, name, admin=True)
        try:
            control.request_install(obj, request.user)
        except control.ControlError as e:
            messages.error(request, str(e))
        else:
            plan = self.kind.install_of(obj)
            what = plan.what if plan else "what its start needs"
            messages.info(request, f"Install of {what} for {obj.name} requested: it runs on host "
                                   f"{self.kind.host_of(obj)}; its outcome shows here and in the Activity.")
        return redirect(obj)

    def activity(self, request: HttpRequest, name: str) -> HttpResponse:
        """Its Activity page: the one page every kind shares (processes/activity_views.py)."""
        from processes import activity_views

        return activity_views.object_activity(request, self.get(request, name))

    # --- defining -------------------------------------------------------------------------------

    def create(self, request: HttpRequest) -> HttpResponse:
        kind = self.kind
        roles.require(roles.can_administer(request.user), f"Only an Administrator may create {kind.label} definitions.")
        form = self.form(request.POST or None)
        if request.method == "POST" and form.is_valid():
            obj = services.save_definition(form, request.user)
            messages.success(request, f"{capfirst(kind.label)} {obj.name} was created.")
            for warning in form.warnings:
                messages.warning(request, warning)
            return redirect(f"{kind.app}:list") if kind.after_create == "list" else redirect(obj)
        return self.render(request, "form.html", self.context(request, form=form, creating=True))

    def edit(self, request: HttpRequest, name: str) -> HttpResponse:
        """The edit form; a valid POST saves (with "Save and restart", restarts it too:
        processes.editing) and goes back to the definition's page."""
        obj = self.get(request, name, admin=True)
        form = self.form(request.POST or None, instance=obj)
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
                (messages.warning if saved.not_restarted else messages.success)(request, saved.message)
                for warning in saved.warnings:
                    messages.warning(request, warning)
                return redirect(obj)
        context = self.context(request, obj, form=form, restart_offered=editing.restart_offered(request.user, obj))
        return self.render(request, "form.html", context)

    def validate(self, request: HttpRequest) -> HttpResponse:
        """Inline validation: the errors and warnings of one field, for htmx to swap in beside it
        (the form's ``feedback``: processes.forms.FieldFeedback)."""
        kind = self.kind
        roles.require(roles.can_administer(request.user), f"Only an Administrator may edit {kind.label} definitions.")
        # The page posts the edited definition's id; anything else (1e309, NaN, 0x1F) finds none.
        pk = request.POST.get("pk", "")
        instance = None
        if pk.isascii() and pk.isdigit() and len(pk) < 19:
            instance = kind.model.objects.filter(pk=int(pk)).first()
        field = request.headers.get("HX-Trigger-Name") or request.GET.get("field", "")
        form = self.form(request.POST, instance=instance, **self.form.validation_kwargs(field))
        errors, warnings = form.feedback(field)
        context = {"errors": errors, "warnings": warnings, "field": field}
        return self.render(request, "htmx/field_feedback.html", context)

    def delete(self, request: HttpRequest, name: str) -> HttpResponse:
        """GET: the confirmation (a dialog for htmx), saying what blocks the delete; POST: delete it."""
        obj = self.get(request, name, admin=True)
        if request.method == "POST":
            try:
                services.delete_definition(obj, request.user)
            except control.ControlError as e:
                messages.error(request, str(e))
                return redirect(obj)
            messages.success(request, f"{capfirst(self.kind.label)} {obj.name} was deleted.")
            return redirect(f"{self.kind.app}:list")
        template = "htmx/delete_dialog.html" if request.htmx else "confirm_delete.html"
        return self.render(request, template, self.context(request, obj, blocker=control.delete_blocker(obj)))


# The definition's fields the shared part of the detail page shows itself (detail.html).
SHOWN_BY_ALL = {"name", "log_file", "restart_policy", "init_timeout", "stop_timeout", "run_as", "allow_root"}


def own_fields(obj: Any) -> list[tuple[str, Any, str]]:
    """(label, value, how) of the kind's own fields (its AUDITED_FIELDS but the shared ones), for a
    kind without a ``_definition.html`` of its own. ``how``: "none" (empty), "text" (a choice by
    its label, yes or no), "code" (a value as typed: a command, a path), "map" (NAME=value lines),
    "secret" (a secret mapping by its names only; a secret text as "set": values are never shown)."""
    secret = set(obj.SECRET_FIELDS)
    rows = []
    for name in obj.AUDITED_FIELDS:
        if name in SHOWN_BY_ALL:
            continue
        label = capfirst(obj._meta.get_field(name).verbose_name)
        value = getattr(obj, name)
        display = getattr(obj, f"get_{name}_display", None)
        if value in (None, "", {}, []):
            rows.append((label, None, "none"))
        elif name in secret:
            rows.append((label, sorted(value) if isinstance(value, dict) else "set", "secret"))
        elif isinstance(value, dict):
            rows.append((label, value, "map"))
        elif isinstance(value, bool) or callable(display):
            rows.append((label, ("yes" if value else "no") if isinstance(value, bool) else display(), "text"))
        else:
            rows.append((label, value, "code"))
    return rows


def definition_urls(views: DefinitionViews, *, name: str = "<str:name>/", pages: str = "",
                    extra: list[URLPattern] | None = None) -> list[URLPattern]:
    """The URLs of a kind's pages. ``name``: how a definition's URL names it, with its slash;
    ``pages``: the segment between that and a page's name (a web application's path may have
    several segments, so its pages follow a "-/", which a path cannot have, as GitLab's /-/ does);
    ``extra``: the kind's own pages, before the detail page (which, last, takes what is left)."""
    action = r"(?P<action>start|stop|restart)/$"
    name_rx = r"^(?P<name>[^/]+)/" if name == "<str:name>/" else r"^(?P<name>.+)/"
    own = "-/" if pages else ""

    def view(method: Callable[..., HttpResponse], *decorators: Callable[..., Any]) -> Callable[..., HttpResponse]:
        for decorate in decorators:
            method = decorate(method)
        return login_required(method)

    get_post = require_http_methods(["GET", "POST"])
    return [
        path("", view(views.list), name="list"),
        path(f"{own}new/", view(views.create, get_post), name="create"),
        path(f"{own}validate/", view(views.validate, require_POST), name="validate"),
        path(f"{name}{pages}activity/", view(views.activity, require_GET), name="activity"),
        path(f"{name}{pages}edit/", view(views.edit, get_post), name="edit"),
        path(f"{name}{pages}delete/", view(views.delete, get_post), name="delete"),
        path(f"{name}{pages}row/", view(views.row), name="row"),
        path(f"{name}{pages}live/", view(views.live), name="live"),
        path(f"{name}{pages}install/", view(views.install, get_post), name="install"),
        re_path(f"{name_rx}{pages}{action}", view(views.control, require_POST), name="control"),
        *(extra or []),
        path(name, view(views.detail), name="detail"),
    ]
