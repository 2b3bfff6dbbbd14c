"""The routes file: what the portal tells a front, and the pages a front answers by itself.

The portal writes one JSON file (atomically: a temporary file in the same directory, then
``os.replace``) and every front (the asyncio front in this package, or nginx through
``webapps.front.nginx``) follows it within a second. Its exact shape, version 1::

    {
      "version": 1,
      "apps": [
        {
          "path": "/flask",                 # the mount: "/" + segments of [A-Za-z0-9._~-], no
                                            # trailing slash, no "." or ".." segment
          "socket": "/abs/path/app.sock",   # absolute path of the app's unix socket
          "state": "running",               # running | starting | stopped | stopping | backoff |
                                            # fatal | exited | unknown
          "reason": "",                     # one line shown on the 503 page ("" when none)
          "protocol": "wsgi",               # wsgi | asgi (asgi apps get websockets passed through)
          "static": [                       # optional: sub-paths the front serves from a directory
            {"url": "/flask/static", "dir": "/abs/dir"}
          ],
          "portal_page": "/webapps/flask/"  # optional: the application's page in the portal
        }
      ],
      "strip_cookies": ["portal_sessionid", "portal_csrftoken"],
      "portal_port": 8000,                  # optional: the port the portal's pages answer on
      "portal_hosts": ["127.0.0.1", ".example.com"]  # optional: the names the portal answers to
    }

With ``portal_port`` and a route's ``portal_page``, the 503 page of an application that is not
running links to its page in the portal: the host the request came by, on the portal's port, as
the portal's pages link to the applications on the host they were reached by and the apps port
(webapps.adapter.apps_origin); but only when that host is one of ``portal_hosts`` (the portal's
ALLOWED_HOSTS: a name, an address, or ``.example.com`` for it and its subdomains), else no link.
The Host header is the client's to choose: a page reached as ``evil.example`` must not send a
visitor to ``http://evil.example:8000``, which the portal would not even answer.

``strip_cookies`` names the cookies a front removes from every forwarded request: the portal's
own session and CSRF cookies (settings.SESSION_COOKIE_NAME and CSRF_COOKIE_NAME), so that no
hosted code ever receives an administrator's session; and an application's ``Set-Cookie`` of
those names is removed on the way out (nginx can only confine it: webapps/front/nginx.conf.j2,
at ``proxy_cookie_flags``), so that no hosted code sets the portal's session or CSRF token either. A hosted Django app's
``sessionid`` and ``csrftoken`` pass through untouched.

Paths, the same in both fronts: a request is routed by its path with the escapes decoded, dot
segments resolved and slashes merged (as nginx does), and the application gets that same path,
escaped again as nginx escapes it (``forward_path``), never the raw one: otherwise
``/victim/..%2fprobe/`` would be routed as ``/probe/`` but reach the probe application as a path
under ``/victim``, or the other way round. A path holding an encoded ``/`` (``%2F``) or an
encoded dot segment (``%2E``, ``.%2E``, ``%2E%2E``...) answers 400 (``refused_path``): decoded,
either can move the request to another application's mount, and no browser sends one.

Routing, the same in both fronts: the longest mount whose path segments prefix the request path
(``/flask`` matches ``/flask`` and ``/flask/x``, never ``/flasky``); ``/flask`` exactly answers 301
to ``/flask/`` keeping the query string; a static sub-path is served for ``url + "/..."`` whatever
the app's state; an app in any state but ``running`` answers 503 (with ``Retry-After`` when it is
``starting`` or in ``backoff``); a running app whose socket is missing or refuses answers 502; a
path under no mount answers 404. Each error page is a small HTML page, or JSON
``{"error", "application", "state", "reason"}`` when the request's Accept names
``application/json`` before ``text/html`` (q-values are not weighed, as nginx's map cannot).

This module never imports Django: any Python 3.11+ runs it.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

# The state names come from the portal's one source (Django-free, like this front).
from portal.process.states import BACKOFF, EXITED, FATAL, RUNNING, STARTING, STOPPED, STOPPING, UNKNOWN

VERSION = 1
# The states a route may have, in the order the error message lists them.
STATES = (RUNNING, STARTING, STOPPED, STOPPING, BACKOFF, FATAL, EXITED, UNKNOWN)
RETRY_STATES = (STARTING, BACKOFF)
TITLES = {
    404: "Not found",
    502: "Application not answering",
    503: "Application unavailable",
    504: "Application too slow",
}
RETRY_AFTER = 2
NOT_ANSWERING_RETRY_AFTER = 1
PROTOCOLS = ("wsgi", "asgi")
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")

# Seconds between two looks at the routes file, by either front (one stat each).
ROUTES_POLL = 0.05


class RoutesError(ValueError):
    """A routes file or entry that a front cannot use; the message says what and how to fix it."""


@dataclass(frozen=True)
class Static:
    url: str
    dir: str


@dataclass(frozen=True)
class Route:
    path: str
    socket: str
    state: str = RUNNING
    reason: str = ""
    protocol: str = "wsgi"
    static: tuple[Static, ...] = ()
    portal_page: str = ""

    def to_json(self) -> dict[str, Any]:
        data = {
            "path": self.path,
            "socket": self.socket,
            "state": self.state,
            "reason": self.reason,
            "protocol": self.protocol,
            "static": [{"url": s.url, "dir": s.dir} for s in self.static],
        }
        if self.portal_page:
            data["portal_page"] = self.portal_page
        return data


@dataclass(frozen=True)
class Routes:
    apps: tuple[Route, ...] = ()
    strip_cookies: tuple[str, ...] = ()
    portal_port: int = 0  # 0: no link to the portal
    portal_hosts: tuple[str, ...] = ()  # the host names a link may use (none: no link)
    # Longest mount first: the first match is the longest prefix.
    ordered: tuple[Route, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ordered", tuple(sorted(self.apps, key=lambda r: -len(r.path))))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": VERSION,
            "apps": [r.to_json() for r in self.apps],
            "strip_cookies": list(self.strip_cookies),
        }
        if self.portal_port:
            data["portal_port"] = self.portal_port
        if self.portal_hosts:
            data["portal_hosts"] = list(self.portal_hosts)
        return data

    def match(self, path: str) -> Route | None:
        """The route whose mount is the longest segment prefix of ``path``, or None."""
        for route in self.ordered:
            mount = route.path
            if mount == "/" or path == mount or path.startswith(mount + "/"):
                return route
        return None


def check_mount(path: str, what: str = "path") -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise RoutesError(f"{what} {path!r} must start with '/', e.g. /flask")
    if path == "/":
        return path
    segments = path[1:].split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise RoutesError(
                f"{what} {path!r} has an empty, '.' or '..' segment or a trailing slash: write it as /a/b"
            )
        if not _SEGMENT.fullmatch(segment):
            raise RoutesError(f"{what} {path!r} may only use letters, digits and ._~- in /-separated segments")
    return path


def route_from_json(item: Any) -> Route:
    if not isinstance(item, dict):
        raise RoutesError(f"each entry of 'apps' must be an object, not {type(item).__name__}")
    path = check_mount(item.get("path"), "app path")
    sock = item.get("socket")
    if not isinstance(sock, str) or not os.path.isabs(sock):
        raise RoutesError(f"app {path}: 'socket' must be an absolute path to a unix socket, got {sock!r}")
    state = item.get("state", RUNNING)
    if state not in STATES:
        raise RoutesError(f"app {path}: state {state!r} is not one of {', '.join(STATES)}")
    protocol = item.get("protocol", "wsgi")
    if protocol not in PROTOCOLS:
        raise RoutesError(f"app {path}: protocol {protocol!r} must be wsgi or asgi")
    reason = item.get("reason") or ""
    if not isinstance(reason, str):
        raise RoutesError(f"app {path}: 'reason' must be a string")
    statics = []
    for s in item.get("static") or ():
        if not isinstance(s, dict):
            raise RoutesError(f"app {path}: each 'static' entry must be an object with 'url' and 'dir'")
        url = check_mount(s.get("url"), f"app {path}: static url")
        if url == path or not (path == "/" or url.startswith(path + "/")):
            raise RoutesError(f"app {path}: static url {url} must be a sub-path of the app, e.g. {path}/static")
        directory = s.get("dir")
        if not isinstance(directory, str) or not os.path.isabs(directory):
            raise RoutesError(f"app {path}: static dir for {url} must be an absolute path, got {directory!r}")
        statics.append(Static(url, directory))
    page = item.get("portal_page") or ""
    if page:
        if not isinstance(page, str) or not page.endswith("/"):
            raise RoutesError(f"app {path}: 'portal_page' must be a path ending in '/', e.g. /webapps/flask/")
        check_mount(page[:-1], f"app {path}: portal_page")
    return Route(path, sock, state, reason.replace("\n", " ").strip(), protocol, tuple(statics), page)


def routes_from_json(data: Any) -> Routes:
    if not isinstance(data, dict):
        raise RoutesError("the routes file must hold a JSON object")
    if data.get("version") != VERSION:
        raise RoutesError(f"routes file version {data.get('version')!r} is not supported: write version {VERSION}")
    apps = [route_from_json(item) for item in data.get("apps") or ()]
    seen: dict[str, str] = {}
    for route in apps:
        key = route.path.lower()
        if key in seen:
            raise RoutesError(
                f"app path {route.path} is listed twice (as {seen[key]}): paths are unique regardless of case"
            )
        seen[key] = route.path
    strip = data.get("strip_cookies") or ()
    if not all(isinstance(name, str) and name and "=" not in name and ";" not in name for name in strip):
        raise RoutesError("'strip_cookies' must be a list of cookie names")
    portal_port = data.get("portal_port") or 0
    if not isinstance(portal_port, int) or isinstance(portal_port, bool) or not 0 <= portal_port <= 65535:
        raise RoutesError(f"'portal_port' must be a port number, 1 to 65535, not {portal_port!r}")
    hosts = data.get("portal_hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) and PORTAL_HOST_ENTRY.fullmatch(h) for h in hosts):
        raise RoutesError(
            f"'portal_hosts' must be a list of host names or addresses (e.g. [\"127.0.0.1\", \".example.com\"]), "
            f"not {hosts!r}"
        )
    return Routes(tuple(apps), tuple(strip), portal_port, tuple(h.lower() for h in hosts))


def load_routes(path: str | os.PathLike[str]) -> Routes:
    """Read and check a routes file; raises RoutesError (or OSError) with what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RoutesError(f"{path} is not valid JSON ({exc}): the portal writes it whole, atomically")
    return routes_from_json(data)


def write_routes(
    path: str | os.PathLike[str],
    apps: list[Route] | list[dict[str, Any]] | tuple[Route, ...],
    strip_cookies: list[str] | tuple[str, ...] = (),
    portal_port: int = 0,
    portal_hosts: list[str] | tuple[str, ...] = (),
) -> Routes:
    """Check and write a routes file atomically (temporary file + rename); returns what was written.

    ``apps`` are ``Route`` objects or dicts of the shape in this module's docstring;
    ``strip_cookies`` the portal's cookie names (settings.SESSION_COOKIE_NAME, CSRF_COOKIE_NAME).
    """
    items = [a.to_json() if isinstance(a, Route) else a for a in apps]
    routes = routes_from_json({"version": VERSION, "apps": items, "strip_cookies": list(strip_cookies),
                               "portal_port": portal_port, "portal_hosts": list(portal_hosts)})
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".routes-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(routes.to_json(), fh, indent=1)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return routes


# Paths ------------------------------------------------------------------------------------------

# In the path, never the query; nginx's map repeats them on $request_uri (webapps/front/nginx.conf.j2).
ENCODED_SLASH = r"%2[fF]"
ENCODED_DOT_SEGMENT = r"/(?:%2[eE]|\.%2[eE]|%2[eE]\.|%2[eE]%2[eE])(?:/|$)"
REFUSED_PATHS = {
    "slash": (ENCODED_SLASH, "an encoded '/' (%2F) in the path is refused: it could reach another application"),
    "dot": (ENCODED_DOT_SEGMENT, "an encoded '.' or '..' segment (%2E) in the path is refused: it could reach "
                                 "another application"),
}
_REFUSED = [(re.compile(pattern), message) for pattern, message in REFUSED_PATHS.values()]
# What nginx leaves as it is when it escapes a path again (ngx_escape_uri, NGX_ESCAPE_URI): every
# printable ASCII character but '#', '%' and '?'.
_KEEP = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#%?")


def refused_path(raw: str) -> str:
    """Why the front refuses this raw path (without its query) with 400; "" when it does not."""
    if "%" in raw:
        for pattern, message in _REFUSED:
            if pattern.search(raw):
                return message
    return ""


def forward_path(path: str) -> str:
    """The routing path (decoded, normalised) as the application gets it: escaped as nginx does."""
    return quote(path, safe=_KEEP)


# Pages the fronts answer by themselves --------------------------------------------------------


def wants_json(accept: str) -> bool:
    """True when Accept names application/json before text/html (or without text/html)."""
    accept = accept.lower()
    j = accept.find("application/json")
    if j < 0:
        return False
    h = accept.find("text/html")
    return h < 0 or j < h


# The pattern both fronts accept as the host of a portal link (nginx's map repeats it).
PORTAL_HOST_PATTERN = r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\]"
# An entry of portal_hosts: such a host, or ".example.com" (it and its subdomains, as in ALLOWED_HOSTS).
PORTAL_HOST_ENTRY = re.compile(rf"(?:{PORTAL_HOST_PATTERN})|\.[A-Za-z0-9][A-Za-z0-9.-]{{0,252}}")


def portal_hosts_pattern(hosts: tuple[str, ...] | list[str]) -> str:
    """A regular expression (Python's and nginx's PCRE alike) for the lowercase hosts a portal link
    may name: each of ``hosts``, and for ``.example.com`` that name and its subdomains, as Django's
    ALLOWED_HOSTS reads it; "" when there is none (then there is never a link)."""
    alternatives = []
    for host in hosts:
        if host.startswith("."):
            alternatives.append(r"(?:[a-z0-9-]+\.)*" + re.escape(host[1:].lower()))
        else:
            alternatives.append(re.escape(host.lower()))
    return "|".join(alternatives)


def portal_origin(scheme: str, host_header: str | None, port: int, hosts: tuple[str, ...] | list[str] = ()) -> str:
    """Where the portal's pages answer for a request that came to ``host_header`` (its Host: a
    name or an address, with or without a port): that host on ``port``; "" when there is no port
    or the host is not one of ``hosts`` (the names the portal answers to): the Host header is the
    client's to write, and it goes into a link."""
    pattern = portal_hosts_pattern(hosts)
    if not port or not host_header or not pattern:
        return ""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[: host.find("]") + 1] if "]" in host else ""
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if scheme not in ("http", "https") or not re.fullmatch(PORTAL_HOST_PATTERN, host):
        return ""
    if not re.fullmatch(pattern, host):
        return ""
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class Page:
    status: int
    error: str
    application: str | None
    state: str | None
    reason: str
    retry_after: int | None = None
    portal_page: str = ""  # the application's page in the portal, linked when the origin is known

    def as_json(self, portal_origin: str = "") -> bytes:
        body = {"error": self.error, "application": self.application, "state": self.state, "reason": self.reason}
        if portal_origin and self.portal_page:
            body["portal"] = portal_origin + self.portal_page
        return json.dumps(body).encode() + b"\n"

    def as_html(self, portal_origin: str = "") -> bytes:
        title = TITLES[self.status]
        lines = [f"<p>{html.escape(self.error)}</p>"]
        if self.application:
            lines.append(f"<p>Application: <b>{html.escape(self.application)}</b>")
            if self.state:
                lines[-1] += f" · state: <b>{html.escape(self.state)}</b>"
            lines[-1] += "</p>"
        if self.reason:
            lines.append(f"<p>Reason: {html.escape(self.reason)}</p>")
        if portal_origin and self.portal_page:
            url = html.escape(portal_origin + self.portal_page)
            lines.append(f'<p><a href="{url}">Its page in the portal</a> ({url})</p>')
        return (
            "<!doctype html>\n<html lang=en><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            f"<title>{self.status} {title}</title>"
            "<body style='font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em'>"
            f"<h1>{self.status} {title}</h1>{''.join(lines)}</body></html>\n"
        ).encode()


def unavailable_page(route: Route) -> Page:
    reason = route.reason or {
        STARTING: "the application is starting; retry in a moment",
        STOPPED: "the application is stopped; an operator can start it in the portal",
        STOPPING: "the application is being stopped",
        BACKOFF: "the application exited and is being restarted",
        FATAL: "the application failed to start; see its log in the portal",
        EXITED: "the application exited; see its log in the portal",
        UNKNOWN: "the portal does not know the application's state",
    }.get(route.state, "")
    return Page(
        503,
        f"application {route.path} is {route.state}",
        route.path,
        route.state,
        reason,
        RETRY_AFTER if route.state in RETRY_STATES else None,
        route.portal_page,
    )


def bad_gateway_page(route: Route, reason: str = "") -> Page:
    return Page(
        502,
        f"application {route.path} is running but does not answer on its socket",
        route.path,
        route.state,
        reason or f"cannot connect to {route.socket}",
    )


def not_answering_page(route: Route) -> Page:
    """A running application whose socket is missing or refuses: after a kill -9 the state is
    still "running" until the keeper has seen the exit and restarts it (a fraction of a second),
    so this is the 503 in between, with Retry-After, not a 502. A malformed answer stays 502."""
    return Page(
        503,
        f"application {route.path} is not answering on its socket",
        route.path,
        route.state,
        "the application is not answering on its socket (restarting?); retry in a moment",
        NOT_ANSWERING_RETRY_AFTER,
    )


def gateway_timeout_page(route: Route, seconds: float) -> Page:
    return Page(
        504,
        f"application {route.path} did not answer in time",
        route.path,
        route.state,
        f"nothing came from the application for {seconds:g} s",
    )


def not_found_page() -> Page:
    return Page(404, "no application is mounted at this path", None, None, "")
