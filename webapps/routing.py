"""The routes file follows the applications' definitions and states.

``sync_routes()`` builds the routes file (version 1, see webapps/front/routes.py) from the
WebApp rows and writes it atomically to settings.WEBAPPS_ROUTES_FILE, where the front on the apps
port picks it up within a second (the asyncio front re-reads it, nginx is reloaded gracefully).
It is called after a definition is saved or deleted (signals below, on commit) and on every
state change the process layer records (``routes_changed()``), and by ``manage.py webapp_routes``
when the launcher starts.

Cheap on purpose, since a state change calls it: one query of a few columns, and nothing is
written when the content is what the file already holds. A lock file orders concurrent writers
(the web server and the worker may both record a change): each builds from the database while
holding it, so the last writer writes the newest rows.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q

from portal.process.states import BACKOFF, ENDED, STARTING, STOPPED, STOPPING
from webapps.front.routes import PORTAL_HOST_ENTRY, Route, RoutesError, Static, check_mount, routes_from_json

log = logging.getLogger(__name__)

KIND = "webapp"  # the process layer's kind of a web application (webapps.adapter)
# The 503 page is public (anyone who reaches the apps port sees it): one line, cut short.
REASON_LENGTH = 200
LAST_OUTPUT = "; last output:"  # what portal.process.supervisor appends to an exit's error
REFUSED = "Start refused:"  # processes.tasks.refuse_start's words
IMPORT_FAILED = re.compile(r"^(Start refused: importing \S+ failed):.*$")
# webapps.checks.missing_package's words: the fix (paths, keys) is for the portal's page.
PACKAGE_MISSING = re.compile(r"^Start refused: \S+ (lacks the package '[^']*' that \S+ imports):.*$")


def routes_file() -> Path:
    return Path(settings.WEBAPPS_ROUTES_FILE)


def _model() -> Any:
    from django.apps import apps

    try:
        return apps.get_model("webapps", "WebApp")
    except LookupError:  # the definitions are not installed yet: no application is served
        return None


def socket_path(app: Any) -> str:
    """The app's unix socket in its run directory (webapps.adapter)."""
    from webapps import adapter

    return str(adapter.socket_path(app))


def _statics(app: Any, mount: str) -> tuple[Static, ...]:
    """The definition's static mappings as front entries: ``SUBPATH=DIR`` strings, or dicts with
    a sub-path (``subpath``/``url``/``path``) and a directory (``dir``/``directory``)."""
    raw = getattr(app, "static_files", None) or ()
    if callable(getattr(raw, "all", None)):  # a related manager
        raw = raw.all()
    if isinstance(raw, dict):
        raw = [{"subpath": k, "dir": v} for k, v in raw.items()]
    found = []
    for item in raw:
        if isinstance(item, str):
            sub, _, directory = item.partition("=")
        elif isinstance(item, dict):
            sub = item.get("subpath") or item.get("url") or item.get("path") or ""
            directory = item.get("dir") or item.get("directory") or ""
        else:
            sub = getattr(item, "subpath", "") or getattr(item, "url", "")
            directory = getattr(item, "directory", "") or getattr(item, "dir", "")
        sub = str(sub).strip().strip("/")
        if sub.startswith(mount.strip("/") + "/") and mount != "/":
            sub = sub[len(mount.strip("/")) + 1:]  # given as the full URL path
        base = "" if mount == "/" else mount
        found.append(Static(f"{base}/{sub}", str(directory)))
    return tuple(found)


def shown_state(app: Any) -> str:
    state = getattr(app, "shown_state", None) or app.state
    return str(state)


def reason(app: Any, state: str) -> str:
    """One line for the 503 page: the last error while the app is failing, else the state's own.

    The page is public (anyone who reaches the apps port sees it), so it says what the portal
    observed (how the app exited, a refused start) but never the app's own output, which the
    keeper appends as "; last output: ..." and which may hold anything the app printed (a
    connection string with its password, say): that stays on the portal's pages.
    """
    error = (getattr(app, "last_error", "") or "").strip()
    # A stopped application's error is the reason only when it is a refused start (a start
    # clears the error it claims, so the refusal is the latest word): an older exit is not.
    if state in ENDED or state == BACKOFF or (state == STOPPED and error.startswith(REFUSED)):
        error = error.split(LAST_OUTPUT, 1)[0].strip()
        if error:
            line = error.splitlines()[0].strip()
            # An import that raised: the exception's text is the application's own words.
            line = IMPORT_FAILED.sub(r"\1 (the portal's page of the application says why)", line)
            line = PACKAGE_MISSING.sub(r"Start refused: its Python \1 (the portal's page of the application says "
                                       r"how to give it)", line)
            return line if len(line) <= REASON_LENGTH else line[: REASON_LENGTH - 1] + "…"
    if state == STARTING:
        return "the application is starting; retry in a moment"
    if state == STOPPING:
        return "the application is being stopped"
    return ""


def portal_page(mount: str) -> str:
    """The path of the application's page in the portal (the 503 page of the fronts links to it)."""
    from django.urls import reverse

    return reverse("webapps:detail", args=[mount.strip("/")]) if mount != "/" else ""


def portal_hosts() -> list[str]:
    """The names the portal answers to (ALLOWED_HOSTS), which the fronts' 503 page may link to:
    names, addresses and ``.domain`` entries; "*" and whatever is not a host name are left out (a
    link to the host a client chose is what this list prevents)."""
    return [host.lower() for host in settings.ALLOWED_HOSTS if PORTAL_HOST_ENTRY.fullmatch(host)]


def route_for(app: Any) -> Route:
    mount = check_mount(str(app.name).rstrip("/") or "/", "application path")
    state = shown_state(app)
    protocol = str(getattr(app, "protocol", "") or "wsgi").lower()
    return Route(mount, socket_path(app), state, reason(app, state), protocol, _statics(app, mount),
                 portal_page(mount))


def build(apps: Iterable[Any]) -> dict[str, Any]:
    """The routes file's content for these definitions (checked: raises RoutesError)."""
    routes = []
    for app in apps:
        try:
            routes.append(route_for(app).to_json())
        except RoutesError as exc:  # one bad row must not take every application off the front
            log.warning("application %s is left off the front: %s", getattr(app, "name", app), exc)
    routes.sort(key=lambda r: r["path"])
    data = {"version": 1, "apps": routes, "strip_cookies": list(settings.PORTAL_COOKIE_NAMES),
            "portal_port": settings.PORTAL_PORT, "portal_hosts": portal_hosts()}
    return routes_from_json(data).to_json()


def _rows() -> Iterable[Any]:
    model = _model()
    if model is None:
        return ()
    # This host's process groups (a definition of several hosts has a row per host: webapps/hosts.py),
    # and only what a route needs (and what shown_state reads): one cheap query. A row with no host
    # of its own is the portal's host's, unless it was last started elsewhere.
    me = settings.PORTAL_HOST_NAME
    mine = Q(host__iexact=me) | Q(host="", run_host="") | Q(host="", run_host__iexact=me)
    return model.groups.filter(mine).only(
        "name", "protocol", "static_files", "state", "state_changed_at", "intent", "intent_at", "last_error",
        "run_key", "run_host",
    )


def current_routes() -> list[dict[str, Any]]:
    """Every application's route now, as the routes file lists them (what sync_routes writes)."""
    return build(_rows())["apps"]


def _text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1)


def sync_routes() -> bool:
    """Rewrite the routes file from the database when its content changed; True when written."""
    target = routes_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(".routes.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = _text(build(_rows()))
        try:
            if target.read_text(encoding="utf-8") == text:
                return False
        except FileNotFoundError:
            pass
        tmp = target.with_name(f".routes-{os.getpid()}.json")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)  # atomic: a front never reads half a file
        return True


def routes_changed() -> None:
    """Call after a definition or a state changed: the file is rewritten once the change is committed."""
    _changes.registered = getattr(_changes, "registered", 0) + 1
    transaction.on_commit(functools.partial(_sync_after, _changes.registered))


# This thread's changes: how many were registered, and up to which one the last rewrite covers.
_changes = threading.local()


def _sync_after(change: int) -> None:
    """The rewrite after a commit: it reads every definition as committed, so the first one after
    a commit covers every change registered before it (a merge of many applications saves each
    one, and its commit then rewrites the file once, not once per application)."""
    if getattr(_changes, "synced", 0) >= change:
        return
    _changes.synced = _changes.registered
    _sync_quietly()


def _sync_quietly() -> None:
    try:
        sync_routes()
    except (OSError, RoutesError, DatabaseError) as exc:
        # Never fails the save that triggered it; the next change (or the launcher) writes it.
        log.error("the routes file %s could not be written: %s", routes_file(), exc)


def connect() -> None:
    """Hook the definitions' saves and deletes and the process layer's records (WebappsConfig.ready).

    The process layer changes a state or an intent either by saving the row (the journal's sync)
    or by a conditional UPDATE, which sends no signal; but every such change is also recorded as
    an Activity row of the application (a request, a transition, a refused or failed start), so
    a new Activity row of kind "webapp" is the other trigger.
    """
    from django.apps import apps
    from django.db.models.signals import post_delete, post_save

    from processes.hosts import host_beat

    model = _model()
    if model is None:
        return
    # On each host, every few seconds: a change made through another host's pages reaches this
    # host's routes too (a definition's static files, a further host added).
    host_beat.connect(_on_beat, dispatch_uid="webapps.routing.beat")
    post_save.connect(_on_change, sender=model, dispatch_uid="webapps.routing.save")
    post_delete.connect(_on_change, sender=model, dispatch_uid="webapps.routing.delete")
    try:
        activity = apps.get_model("processes", "Activity")
    except LookupError:
        return
    post_save.connect(_on_activity, sender=activity, dispatch_uid="webapps.routing.activity")


def _on_beat(**kwargs: Any) -> None:
    _sync_quietly()


def _on_change(**kwargs: Any) -> None:
    routes_changed()


def _on_activity(instance: Any, created: bool = False, **kwargs: Any) -> None:
    if created and instance.kind == KIND:
        routes_changed()


__all__ = ["build", "connect", "route_for", "routes_changed", "sync_routes"]


# An operator's own nginx ------------------------------------------------------------------------


def nginx_config(server_name: str = "_", listen: str | int | None = None,
                 trusted_proxies: list[str] | None = None) -> str:
    """What ``manage.py webapp nginx-config`` prints: the maps, upstreams and server block for an
    operator's own nginx (included inside its ``http { }``), from the definitions as they are now.
    ``trusted_proxies``: proxies in front of that nginx whose X-Forwarded-For it believes."""
    from webapps.front.forwarding import parse_trusted
    from webapps.front.nginx import render_nginx_config
    if listen is None:
        listen = settings.PORTAL_APPS_PORT
    listen = str(listen)
    if not (listen.isdigit() or ":" in listen):
        raise RoutesError(f"--listen {listen!r} is not a port or HOST:PORT, e.g. 8001 or 127.0.0.1:8001")
    if any(c in server_name for c in ";{}'\"$#\\") or not server_name.strip():
        raise RoutesError(f"--server-name {server_name!r} is not a host name, e.g. apps.example.com")
    try:
        trusted = parse_trusted(trusted_proxies or [])
    except ValueError as exc:
        raise RoutesError(f"--trusted-proxy: {exc}") from None
    routes = routes_from_json(build(_rows()))
    return render_nginx_config(routes, listen, include=True, server_name=server_name.strip(),
                               trusted_proxies=trusted)


def edge_config(server_name: str = "_", listen: str | int = 8080, include: bool = True,
                prefix: str = ".") -> tuple[str, list[str]]:
    """What ``manage.py webapp nginx-config --edge`` prints: an nginx in front of every host's front,
    each application's path sent to the hosts it runs on (webapps/front/edge.conf.j2). Returns the
    configuration and what the operator should know (a host whose front is unknown: left out)."""
    from processes.hosts import front_address, fronts
    from webapps import hosts
    from webapps.front.nginx import EdgeApp, render_edge_config

    listen = str(listen)
    if not (listen.isdigit() or ":" in listen):
        raise RoutesError(f"--listen {listen!r} is not a port or HOST:PORT, e.g. 80 or 10.0.0.1:80")
    if any(c in server_name for c in ";{}'\"$#\\") or not server_name.strip():
        raise RoutesError(f"--server-name {server_name!r} is not a host name, e.g. apps.example.com")
    model = _model()
    definitions = list(model.objects.only("name", "hosts")) if model is not None else []
    names = {settings.PORTAL_HOST_NAME} | {n for d in definitions for n in hosts.host_names(d.hosts)}
    known = fronts(names)
    known.setdefault(settings.PORTAL_HOST_NAME, front_address())
    apps, notes = [], []
    for definition in definitions:
        wanted = hosts.host_names(definition.hosts) or [settings.PORTAL_HOST_NAME]
        found = [n for n in wanted if n in known]
        for name in wanted:
            if name not in known:
                notes.append(f"{definition.name}: host {name} has never reported its front (no worker has run "
                             f"there with PORTAL_HOST_NAME={name}): left out of its upstream")
        if not found:
            notes.append(f"{definition.name}: none of its hosts has a known front: left out")
            continue
        apps.append(EdgeApp(definition.name, tuple(found), tuple(known[n] for n in found)))
    return render_edge_config(apps, listen, include=include, prefix=prefix, server_name=server_name.strip()), notes
