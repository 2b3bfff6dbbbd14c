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

from webapps.models import WebApp, host_names, host_of, same_host

__all__ = ["MAX_HOSTS", "bad_host_names", "dropped_groups", "host_names", "host_of", "planned", "same_host",
           "sync_groups"]

# What a further host's row copies from its definition: everything an operator defines.
COPIED = (*WebApp.AUDITED_FIELDS, "changed_by")
MAX_HOSTS = 32  # each is a process group, a row, and a question to its worker at each Save
HOST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")


def bad_host_names(text: str) -> list[str]:
    """The names that are no host's: characters a host name has not, or digits and dots alone that
    are no IPv4 address ("web 2" typed for web2 gives "web" and "2": the 2 is refused)."""
    import ipaddress

    def bad(name: str) -> bool:
        if not HOST_NAME.fullmatch(name):
            return True
        if name.replace(".", "").isdigit():
            try:
                ipaddress.IPv4Address(name)
            except ValueError:
                return True
        return False

    return [name for name in host_names(text) if bad(name)]


def planned(app: WebApp) -> tuple[str, list[str]]:
    """(the definition's own row's host, the further hosts) its Hosts field asks for. The own row
    keeps its host while that host stays in the list, so a reordered list moves no process group."""
    names = host_names(app.hosts)
    if not names:
        return "", []
    own = next((n for n in names if app.host and same_host(n, app.host)), names[0])
    return own, [n for n in names if n != own]


def dropped_groups(app: WebApp) -> list[WebApp]:
    """The saved process groups that the (unsaved) Hosts value would remove or move: the
    definition's own row when its host changes, and a further host's row no longer named (or whose
    host the definition's own row takes)."""
    if app.pk is None:
        return []
    own, further = planned(app)
    saved = WebApp.groups.filter(pk=app.pk).first()
    gone = [saved] if saved is not None and not same_host(saved.host, own) else []
    for row in WebApp.groups.filter(primary_id=app.pk):
        if not any(same_host(row.host, n) for n in further):
            gone.append(row)
    return gone


def sync_groups(app: WebApp) -> None:
    """After the definition ``app`` was saved: one row for each further host it names, with its
    fields; the row of a host no longer named deleted (the form refused that while it ran)."""
    if app.primary_id is not None or app.pk is None:
        return
    own, further = planned(app)
    rows = {row.host.lower(): row for row in WebApp.groups.filter(primary_id=app.pk)}
    if app.host != own:
        taken = rows.pop(own.lower(), None)
        if taken is not None:  # the definition's own row moves to that host: one row per host
            taken.delete()
        WebApp.groups.filter(pk=app.pk).update(host=own)
        app.host = own
    values: dict[str, Any] = {WebApp._meta.get_field(f).attname: getattr(app, WebApp._meta.get_field(f).attname)
                              for f in COPIED}
    for name in further:
        row = rows.pop(name.lower(), None)
        if row is None:
            WebApp.groups.create(primary_id=app.pk, host=name, created_by_id=app.created_by_id, **values)
        else:
            WebApp.groups.filter(pk=row.pk).update(**values)
    for row in rows.values():
        row.delete()
