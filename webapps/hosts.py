"""A web application on several hosts: one process group per host.

A definition names its hosts (``WebApp.hosts``: blank for the portal's own). Its own row is the
process group on one of them; each further host has a row of its own (``primary`` the definition,
``host`` that host) with a copy of the definition's fields, which the process layer starts, stops
and watches as it does any row: on that host's queue, by that host's worker, each with its own
state, pid, runs and activity. ``WebApp.objects`` lists the definitions only; ``WebApp.groups``
has every row. ``sync_groups`` makes the rows follow the definition after each save.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from portal.process import states
from portal.process.states import RUNNING
from processes.hosts import down_failure
from webapps.models import WebApp

# What a further host's row copies from its definition: everything an operator defines.
COPIED = (*WebApp.AUDITED_FIELDS, "changed_by")
HOST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")


def host_names(text: str) -> list[str]:
    """The hosts a definition's Hosts field names, in its order, each once (any case)."""
    names: list[str] = []
    for word in re.split(r"[\s,]+", text or ""):
        if word and word.lower() not in {n.lower() for n in names}:
            names.append(word)
    return names


def bad_host_names(text: str) -> list[str]:
    return [name for name in host_names(text) if not HOST_NAME.fullmatch(name)]


def host_of(app: WebApp) -> str:
    """The host whose worker runs this row's process group."""
    return app.host or settings.PORTAL_HOST_NAME


def same_host(a: str, b: str) -> bool:
    return (a or settings.PORTAL_HOST_NAME).lower() == (b or settings.PORTAL_HOST_NAME).lower()


def planned(app: WebApp) -> tuple[str, list[str]]:
    """(the definition's own row's host, the further hosts) its Hosts field asks for. The own row
    keeps its host while that host stays in the list, so a reordered list moves no process group."""
    names = host_names(app.hosts)
    if not names:
        return "", []
    own = next((n for n in names if app.host and same_host(n, app.host)), names[0])
    return own, [n for n in names if n != own]


def dropped_groups(app: WebApp) -> list[WebApp]:
    """The saved process groups that the (unsaved) Hosts value would remove or move."""
    if app.pk is None:
        return []
    own, further = planned(app)
    wanted = [own or settings.PORTAL_HOST_NAME, *further]
    saved = WebApp.groups.filter(pk=app.pk).first()
    gone = []
    for row in WebApp.groups.filter(primary_id=app.pk):
        if not any(same_host(row.host, n) for n in wanted):
            gone.append(row)
    if saved is not None and not same_host(saved.host, own):
        gone.append(saved)
    return gone


def sync_groups(app: WebApp) -> None:
    """After the definition ``app`` was saved: one row for each further host it names, with its
    fields; the row of a host no longer named deleted (the form refused that while it ran)."""
    if app.primary_id is not None or app.pk is None:
        return
    own, further = planned(app)
    if app.host != own:
        WebApp.groups.filter(pk=app.pk).update(host=own)
        app.host = own
    values: dict[str, Any] = {WebApp._meta.get_field(f).attname: getattr(app, WebApp._meta.get_field(f).attname)
                              for f in COPIED}
    rows = {row.host.lower(): row for row in WebApp.groups.filter(primary_id=app.pk)}
    for name in further:
        row = rows.pop(name.lower(), None)
        if row is None:
            WebApp.groups.create(primary_id=app.pk, host=name, created_by_id=app.created_by_id, **values)
        else:
            WebApp.groups.filter(pk=row.pk).update(**values)
    for row in rows.values():
        row.delete()


def groups_summary(groups: list[WebApp]) -> dict[str, Any]:
    """How many of its hosts run it: "running on 2 of 3 hosts", and each group with its host's health."""
    shown = []
    for group in groups:
        host = host_of(group)
        down = down_failure(host) is not None
        shown.append({"group": group, "host": host, "down": down,
                      "state": states.UNKNOWN if down and group.is_active else group.shown_state})
    running = sum(1 for g in shown if g["state"] == RUNNING)
    return {"groups": shown, "running": running, "total": len(shown)}
