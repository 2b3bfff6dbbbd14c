"""Activity pages: every transition and request, per process and across every process of every kind.

The table may hold millions of rows, so a page never counts them and never uses
OFFSET: it walks the (at, id) index from a cursor ("older" / "newer" links) and
reads 51 rows to learn whether a further page exists. Filters arrive as GET
parameters, so a filtered page is a link that can be shared or bookmarked.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from portal import roles
from processes.adapters import ProcessAdapter, adapter_of, all_adapters, kinds_text
from processes.models import NAME_LENGTH, Activity, ManagedProcess, Run

PAGE_SIZE = 50
RUNS_SHOWN = 20
NO_ROLE = "Your account has no role: ask an administrator."
# The field names of a CSV export, in Activity.as_row()'s order.
CSV_COLUMNS = [
    "time", "kind", "name", "from", "to", "pid", "port", "exit_code", "signal",
    "expected", "trigger", "level", "host", "message",
]
CURSOR = re.compile(r"^(-?\d{1,20})_(\d{1,20})$")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DATETIME_LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


class ActivityFilter(forms.Form):
    """The filters of the activity pages; every error says what to type instead."""

    gateway = forms.CharField(required=False, max_length=NAME_LENGTH)  # named so in links made before
    trigger = forms.CharField(
        required=False,
        max_length=160,
        label="User or trigger",
        help_text="A user name (also finds that user's API and CLI requests), or auto-restart, reconcile, keeper.",
    )
    level = forms.ChoiceField(
        required=False,
        choices=[("", "Any level"), *Activity.Level.choices],
        error_messages={
            "invalid_choice": "Unknown level %(value)s: choose Info, Warning or Error (or any level)."
        },
    )
    since = forms.DateTimeField(
        required=False,
        label="From",
        input_formats=DATETIME_LOCAL_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "“From” is not a date and time: write it as 2024-05-31T14:30."},
    )
    until = forms.DateTimeField(
        required=False,
        label="Until",
        input_formats=DATETIME_LOCAL_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Shows activity before this time; the time itself is not included.",
        error_messages={"invalid": "“Until” is not a date and time: write it as 2024-05-31T18:00."},
    )

    def clean_trigger(self) -> str:
        return self.cleaned_data["trigger"].strip()

    def clean_gateway(self) -> str:
        return self.cleaned_data["gateway"].strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            raise forms.ValidationError(
                "“From” is not before “Until”: swap them, or clear one of the two."
            )
        return data

    def apply(self, rows: QuerySet[Activity]) -> QuerySet[Activity]:
        data = self.cleaned_data
        # The parameter keeps its name ("gateway"): links and bookmarks made before stay good.
        if name := data.get("gateway"):
            rows = rows.filter(_named(name))
        if trigger := data.get("trigger"):
            names = [trigger] if ":" in trigger else [trigger, f"api:{trigger}", f"cli:{trigger}"]
            rows = rows.filter(trigger__in=names)
        if level := data.get("level"):
            rows = rows.filter(level=level)
        if since := data.get("since"):
            rows = rows.filter(at__gte=since)
        if until := data.get("until"):
            rows = rows.filter(at__lt=until)
        return rows


def _named(name: str) -> Q:
    """The rows of the processes called ``name`` (of any kind); when none exists, those of a
    deleted one, which keep only the name. Each uses an index ((kind, object_id, at, id),
    (kind, name, at))."""
    kinds = all_adapters()
    live = Q(pk__in=[])
    for kind in kinds:
        # Every process group of the definition: a web application on several hosts has one per host.
        pks = list(kind.model.groups.filter(name__iexact=name).values_list("pk", flat=True)[:100])
        if pks:
            live |= Q(kind=kind.kind, object_id__in=pks)
    if live != Q(pk__in=[]):
        return live
    return Q(kind__in=[k.kind for k in kinds], object_id=None, name=name)


def _cursor_of(row: Activity) -> str:
    return f"{(row.at - EPOCH) // dt.timedelta(microseconds=1)}_{row.pk}"


def _parse_cursor(value: str) -> tuple[dt.datetime, int] | None:
    match = CURSOR.match(value)
    if not match:
        return None
    try:
        at = EPOCH + dt.timedelta(microseconds=int(match[1]))
    except OverflowError:
        return None
    return at, int(match[2])


@dataclass
class Page:
    rows: list[Activity]
    older: str | None  # cursor of the last row when older rows exist
    newer: str | None  # cursor of the first row when newer rows exist
    is_first: bool


def _page(rows: QuerySet[Activity], before: tuple[dt.datetime, int] | None,
          after: tuple[dt.datetime, int] | None) -> Page:
    """One page of ``rows`` (already filtered), newest first, by keyset on (at, id).

    The redundant ``at <= cursor`` bound lets the database start its index scan
    at the cursor; the OR alone would make it walk every newer row first.
    """
    if after:
        at, pk = after
        found = list(
            rows.filter(Q(at__gt=at) | Q(at=at, pk__gt=pk), at__gte=at).order_by("at", "id")[: PAGE_SIZE + 1]
        )
        if len(found) > PAGE_SIZE:
            found = found[:PAGE_SIZE][::-1]
            return Page(found, older=_cursor_of(found[-1]), newer=_cursor_of(found[0]), is_first=False)
        # Nothing newer than a full page: that is the first page, which refreshes itself.
    if before and not after:
        at, pk = before
        found = list(
            rows.filter(Q(at__lt=at) | Q(at=at, pk__lt=pk), at__lte=at).order_by("-at", "-id")[: PAGE_SIZE + 1]
        )
        more = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        return Page(
            found,
            older=_cursor_of(found[-1]) if more else None,
            newer=_cursor_of(found[0]) if found else None,
            is_first=False,
        )
    found = list(rows.order_by("-at", "-id")[: PAGE_SIZE + 1])
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return Page(found, older=_cursor_of(found[-1]) if more else None, newer=None, is_first=True)


def _filter_query(form: ActivityFilter, **extra: str) -> str:
    """The query string of the current filters (as typed), plus ``extra``."""
    params = {k: v for k, v in form.data.items() if k in form.fields and v}
    params.update(extra)
    return urlencode(params)


class _Echo:
    """csv.writer writes into this, and the response streams what it returns."""

    def write(self, value: str) -> str:
        return value


def _cell(value: object) -> object:
    """Spreadsheets run a cell that starts with = + - @ as a formula; a quote keeps it text."""
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


def _csv_lines(rows: Iterable[Activity]) -> Iterator[str]:
    writer = csv.DictWriter(_Echo(), fieldnames=CSV_COLUMNS)  # type: ignore[arg-type]
    yield writer.writeheader()  # type: ignore[misc]
    for row in rows:
        yield writer.writerow({k: _cell(v) for k, v in row.as_row().items()})


def _csv_response(rows: QuerySet[Activity], parts: list[str]) -> StreamingHttpResponse:
    # iterator(): a large export streams in chunks instead of loading every row at once.
    response = StreamingHttpResponse(
        _csv_lines(rows.order_by("-at", "-id").iterator(chunk_size=2000)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_csv_file_name(parts)}"'
    return response


def _csv_file_name(parts: list[str]) -> str:
    """activity-PyGate-error-2026-11-30-143000.csv: the filters in the name, in safe characters only."""
    safe = [re.sub(r"[^A-Za-z0-9_.-]+", "_", part).strip("_.") for part in parts]
    stamp = timezone.localtime().strftime("%Y-%m-%d-%H%M%S")
    return "-".join(["activity", *[p for p in safe if p][:6], stamp]) + ".csv"


def _filter_parts(form: ActivityFilter, obj: ManagedProcess | None) -> list[str]:
    """What the export holds, for its file name: the process (or all), level, trigger, time span."""
    data = form.cleaned_data
    parts = [obj.name if obj else data.get("gateway") or "all", data.get("level") or "", data.get("trigger") or ""]
    if since := data.get("since"):
        parts.append("from-" + timezone.localtime(since).strftime("%Y%m%dT%H%M"))
    if until := data.get("until"):
        parts.append("until-" + timezone.localtime(until).strftime("%Y%m%dT%H%M"))
    return parts


def _activity(request: HttpRequest, rows: QuerySet[Activity], context: dict[str, Any]) -> HttpResponse:
    """What both pages share: filters, keyset page, htmx rows partial and CSV."""
    form = ActivityFilter(request.GET)
    obj: ManagedProcess | None = context.get("obj")
    if obj is not None:
        form.fields.pop("gateway")
    problems: list[str] = []
    if form.is_valid():
        rows = form.apply(rows)
    else:
        problems = [str(e) for errors in form.errors.values() for e in errors]

    if request.GET.get("format") == "csv":
        if problems:
            return HttpResponse(
                "The CSV was not made: " + " ".join(problems) + "\n",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        return _csv_response(rows, _filter_parts(form, obj))
    if request.GET.get("format"):
        problems.append(f"Unknown format {request.GET['format']!r}: the only export is format=csv.")

    before = after = None
    for key in ("before", "after"):
        if value := request.GET.get(key):
            cursor = _parse_cursor(value)
            if cursor is None:
                problems.append("The page link is damaged: the newest page is shown instead.")
            elif key == "before":
                before = cursor
            else:
                after = cursor
    refused = bool(problems) and not form.is_valid()
    if refused:
        page = Page([], older=None, newer=None, is_first=False)
    else:
        page = _page(rows, before, after)

    context.update(
        {
            "form": form,
            "page": page,
            "problems": problems,
            "refused": refused,
            "filtered": form.is_valid() and any(form.cleaned_data.values()),
            "older_query": _filter_query(form, before=page.older) if page.older else "",
            "newer_query": _filter_query(form, after=page.newer) if page.newer else "",
            "csv_query": _filter_query(form, format="csv"),
            "filter_query": _filter_query(form),
            "show_name": obj is None,
        }
    )
    if request.htmx:
        return render(request, "processes/htmx/activity_rows.html", context)
    status = 400 if refused else 200
    return render(request, "processes/activity.html", context, status=status)


@login_required
@require_GET
def all_activity(request: HttpRequest) -> HttpResponse:
    roles.require(roles.can_view(request.user), NO_ROLE)
    def names() -> list[str]:
        # Called by the template of the full page only: the htmx refresh of the rows asks for no name.
        return sorted({name for kind in all_adapters() for name in kind.model.objects.values_list("name", flat=True)},
                      key=str.lower)

    return _activity(request, Activity.objects.all(), {
        "obj": None, "names": names, "kinds": kinds_text(), "kinds_or": kinds_text("or"),
    })


def object_activity(request: HttpRequest, obj: ManagedProcess) -> HttpResponse:
    """The Activity page of one process (its kind's URL resolves the object and checks nothing else)."""
    roles.require(roles.can_view(request.user), NO_ROLE)
    kind: ProcessAdapter = adapter_of(obj)
    context: dict[str, Any] = {"obj": obj, "kind": kind, "list_url": kind.list_url()}
    if not request.htmx and request.GET.get("format") != "csv":
        context["runs"] = Run.objects.of(obj).order_by("-started_at", "-id")[:RUNS_SHOWN]
    return _activity(request, Activity.objects.of(obj), context)
