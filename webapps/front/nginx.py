"""nginx as the front: a config rendered from the routes file, and a runner that keeps it current.

``render_nginx_config(routes, listen=...)`` renders the template ``nginx.conf.j2`` beside this
file (Jinja2) into a complete nginx.conf (or, with ``include=True``, the maps, upstreams and server
block to include in an operator's own ``http {}``) that behaves as the asyncio front does
(routes.py's docstring): longest-prefix locations, the slash redirect, keep-alive upstreams on each
app's unix socket, streaming both ways (no request or response buffering), websocket upgrade
headers for ASGI apps, ``Host $http_host`` (``$host`` drops the port), X-Forwarded-*, the portal's
cookies removed by a chain of ``map``s (and an application's Set-Cookie of them confined: the
template says how, at ``proxy_cookie_flags``), the normalised path passed on and encoded slashes
and dot segments refused, static aliases that follow no symlink, and
generated 404/502/503 pages (HTML, or JSON by Accept).

``python -m webapps.front.nginx --listen HOST:PORT --routes FILE --dir DIR`` runs nginx as a
child with its config in DIR (``-p DIR -c DIR/nginx.conf``), re-renders it when the routes file
changes, checks it with ``nginx -t`` and reloads with SIGHUP: open connections finish on the old
workers. A config that fails ``nginx -t`` is kept aside as nginx.conf.rejected and the running one
stays in force. ``--metrics FILE`` keeps the per-app figures metrics.py describes, read from a
short per-request log. ``--print`` prints the config instead.

Never imports Django.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import jinja2

from portal import paths
from portal.process.states import RUNNING

from .forwarding import Network, add_trusted_proxy_option
from .metrics import Metrics
from .routes import (
    PORTAL_HOST_PATTERN,
    REFUSED_PATHS,
    ROUTES_POLL,
    Page,
    Routes,
    RoutesError,
    bad_gateway_page,
    gateway_timeout_page,
    load_routes,
    not_answering_page,
    not_found_page,
    portal_hosts_pattern,
    unavailable_page,
)

NGINX = paths.NGINX
MIME_TYPES = "/etc/nginx/mime.types"
STATIC_NOT_FOUND = "404 Not Found: no such static file\n"  # the asyncio front's words
_UNSAFE = re.compile(r"[\s\"'$;{}\\#]")
# A cookie name (RFC 6265's token) less "'": each goes into a regex of nginx's, in quotes.
_COOKIE_NAME = re.compile(r"[A-Za-z0-9!#%&*+.^_`|~-]+")


def find_nginx() -> str | None:
    """nginx as the launcher and the tests find it (PORTAL_NGINX, else the PATH, else NGINX)."""
    return paths.find_nginx()


def _quote(text: str) -> str:
    """An nginx quoted string; ``$`` must already be escaped by the caller (nginx has no escape for it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _safe_path(path: str, what: str) -> str:
    if _UNSAFE.search(path):
        raise RoutesError(
            f"{what} {path!r} holds a space, quote, '$', ';', '#' or brace: nginx cannot use it; rename it"
        )
    return path


# Stands for the portal's origin in a page's text until its "$" are escaped, then becomes the
# variable the portal_origin map sets from the request's host ($webapps_portal_origin).
PORTAL_ORIGIN_MARK = "@webapps-portal-origin@"


def _page_body(page: Page, fmt: str, portal: bool = False) -> str:
    mark = PORTAL_ORIGIN_MARK if portal else ""
    if fmt == "json":
        body = page.as_json(mark).decode().replace("$", "\\u0024")
    else:
        body = page.as_html(mark).decode().replace("$", "&#36;")
    return body.replace(PORTAL_ORIGIN_MARK, "${webapps_portal_origin}")


# nginx.conf.j2 beside this file is the config; nginx's syntax is no HTML, so nothing is escaped
# for it automatically: what comes from the routes file goes through |quote or _safe_path.
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    autoescape=False,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_TEMPLATES.filters["quote"] = _quote
_TEMPLATES.globals["page_body"] = _page_body


@dataclass(frozen=True)
class _Static:
    url: str
    dir: str  # with its trailing slash, as alias wants


@dataclass(frozen=True)
class _App:
    """One route as the template uses it: ``n`` numbers its upstream and its pages."""

    n: int
    mount: str
    base: str  # the mount with a trailing slash: the prefix its location matches
    protocol: str
    state: str
    socket: str
    statics: tuple[_Static, ...]
    unavailable: Page | None  # answered with this 503 page instead of being proxied to
    outside_mount_regex: str  # a cookie Path that is not under the mount
    bad_gateway: Page | None = None
    not_answering: Page | None = None
    gateway_timeout: Page | None = None


def _apps(routes: Routes, idle_timeout: int, lenient: bool) -> list[_App]:
    apps = []
    for n, route in enumerate(routes.apps, 1):
        mount = route.path
        page = unavailable_page(route) if route.state != RUNNING else None
        try:
            statics = tuple(_Static(s.url, _safe_path(s.dir.rstrip("/") + "/", f"static dir of {mount}"))
                            for s in route.static)
            _safe_path(route.socket, f"socket of {mount}")
        except RoutesError as exc:
            if not lenient:
                raise
            statics = ()
            page = Page(503, f"application {mount} cannot be served by nginx", mount, route.state, str(exc))
        served = page is None
        apps.append(_App(
            n=n,
            mount=mount,
            base="/" if mount == "/" else mount + "/",
            outside_mount_regex=f"~^(?!{re.escape(mount)}(?:/|$))",
            protocol=route.protocol,
            state=route.state,
            socket=route.socket,
            statics=statics,
            unavailable=page,
            bad_gateway=bad_gateway_page(route, "the application sent a malformed answer or closed the connection")
            if served else None,
            not_answering=not_answering_page(route) if served else None,
            gateway_timeout=gateway_timeout_page(route, idle_timeout) if served else None,
        ))
    return apps


def _cookie_maps(names: tuple[str, ...]) -> tuple[list[dict[str, str]], str]:
    """The chain of maps that removes each named cookie (twice, for a duplicate) from the Cookie
    header, then tidies the separators left; and the variable at the end of the chain."""
    maps: list[dict[str, str]] = []
    source = "$http_cookie"
    for name in names:
        if not _COOKIE_NAME.fullmatch(name):
            raise RoutesError(f"cookie name {name!r} cannot be stripped by nginx: use letters, digits, - and _")
        for _ in range(2):
            n = len(maps) + 1
            before, after = f"webapps_c{n}a", f"webapps_c{n}b"
            pattern = rf"~^(?<{before}>|.*?;\s*){re.escape(name)}=[^;]*(?:;\s*)?(?<{after}>.*)$"
            maps.append({"source": source, "target": f"$webapps_cookie_{n}", "pattern": pattern,
                         "before": before, "after": after})
            source = maps[-1]["target"]
    if maps:
        maps.append({"source": source, "target": f"$webapps_cookie_{len(maps) + 1}", "pattern": ""})
        source = maps[-1]["target"]
    return maps, source


def render_nginx_config(
    routes: Routes,
    listen: str = "127.0.0.1:8001",
    *,
    include: bool = False,
    prefix: str | os.PathLike[str] = ".",
    user: str | None = None,
    worker_processes: int | str = 1,
    mime_types: str = MIME_TYPES,
    server_name: str = "_",
    keepalive: int = 16,
    head_timeout: int = 10,
    figures_log: str | None = None,
    idle_timeout: int = 300,
    lenient: bool = False,
    trusted_proxies: Sequence[Network] = (),
) -> str:
    """A complete nginx.conf for the routes, rendered from nginx.conf.j2; with ``include``, only
    the maps, upstreams and the apps' server, to include in an operator's own ``http { }``.

    ``prefix`` is the directory holding the pid file, the error log and the temp paths; ``user``
    the account the workers run as when nginx starts as root (the owner of the apps' sockets).

    Applications get one address in ``X-Forwarded-For``: ``$remote_addr``, which the realip module
    takes from the ``X-Forwarded-For`` of a proxy in ``trusted_proxies`` (webapps/front/forwarding.py).

    ``idle_timeout`` bounds the silence of a transfer either way (a stalled upload, an app that does
    not answer, a client that stops reading), as the asyncio front's own ``idle_timeout`` does.
    A socket or static folder whose path nginx cannot use raises RoutesError, or with
    ``lenient`` (the runner's choice: one such application must not stop the others' changes)
    makes that application answer 503 saying so.
    """
    apps = _apps(routes, idle_timeout, lenient)
    hosts = portal_hosts_pattern(routes.portal_hosts)
    cookie_maps, cookie_var = _cookie_maps(routes.strip_cookies)
    context = {
        "include": include,
        "listen": listen,
        "server_name": server_name,
        "keepalive": keepalive,
        "head_timeout": head_timeout,
        "idle_timeout": idle_timeout,
        "apps": apps,
        "refused_paths": [
            {"key": key, "message": message,
             "request_uri": "~^[^?]*" + pattern.replace("(?:/|$)", "(?:[/?]|$)")}
            for key, (pattern, message) in REFUSED_PATHS.items()
        ],
        "cookie_maps": cookie_maps,
        "cookie_var": cookie_var if cookie_maps else "",
        "portal_cookie_regex": "~^(?:" + "|".join(re.escape(name) for name in routes.strip_cookies) + ")$",
        "trusted_proxies": [str(network) for network in trusted_proxies],
        # A trusted proxy's X-Forwarded-Proto is believed through this map (nginx.conf.j2).
        "proto": "$webapps_proto" if trusted_proxies else "$scheme",
        "portal_port": routes.portal_port,
        # A host the portal answers to (routes.portal_origin's rule; $host is lowercase, without
        # its port), captured for the link.
        "portal_host_regex": f"~^(?=(?:{PORTAL_HOST_PATTERN})$)(?<webapps_portal_host>{hosts})$" if hosts else "",
        "figures_log": _safe_path(figures_log, "figures log") if figures_log else "",
        "static_not_found": STATIC_NOT_FOUND,
        "not_found": not_found_page(),
    }
    if not include:
        context.update(
            prefix=_safe_path(str(Path(prefix).resolve()), "nginx directory"),
            user=user or "",
            worker_processes=worker_processes,
            mime_types=_safe_path(mime_types, "mime types file") if os.path.exists(mime_types) else "",
        )
    return _TEMPLATES.get_template("nginx.conf.j2").render(context)


class NginxFront:
    """nginx run as a child with its config in ``directory``; ``update`` re-renders and reloads."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        listen: str,
        nginx: str | None = None,
        worker_processes: int | str = 1,
        head_timeout: int = 10,
        figures: bool = False,
        idle_timeout: int = 300,
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.head_timeout = head_timeout
        self.trusted_proxies = tuple(trusted_proxies)
        self.idle_timeout = idle_timeout
        self.dir = Path(directory).resolve()
        self.listen = listen
        # When there is none, the error names what was configured (PORTAL_NGINX) or Debian's place.
        self.nginx = nginx or find_nginx() or os.environ.get("PORTAL_NGINX", "").strip() or NGINX
        self.worker_processes = worker_processes
        self.conf = self.dir / "nginx.conf"
        self.figures_log = self.dir / "figures.log" if figures else None
        self.process: subprocess.Popen[bytes] | None = None
        user = pwd.getpwuid(os.geteuid()).pw_name
        self.user = user if os.geteuid() == 0 else None  # workers run as the sockets' owner

    def _args(self, conf: Path) -> list[str]:
        return [self.nginx, "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")]

    def render(self, routes: Routes) -> str:
        return render_nginx_config(
            routes,
            self.listen,
            prefix=self.dir,
            user=self.user,
            worker_processes=self.worker_processes,
            head_timeout=self.head_timeout,
            idle_timeout=self.idle_timeout,
            figures_log=str(self.figures_log) if self.figures_log else None,
            lenient=True,
            trusted_proxies=self.trusted_proxies,
        )

    def check(self, conf: Path) -> tuple[bool, str]:
        done = subprocess.run([*self._args(conf), "-t", "-q"], capture_output=True, text=True, timeout=30)
        return done.returncode == 0, (done.stderr + done.stdout).strip()

    def write(self, routes: Routes) -> None:
        """Render, check with nginx -t, and put in place; raises RoutesError when nginx refuses it."""
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        candidate = self.dir / "nginx.conf.new"
        candidate.write_text(self.render(routes), encoding="utf-8")
        ok, output = self.check(candidate)
        if not ok:
            os.replace(candidate, self.dir / "nginx.conf.rejected")
            raise RoutesError(f"nginx -t refused the rendered config (kept as nginx.conf.rejected): {output}")
        os.replace(candidate, self.conf)

    def start(self, routes: Routes) -> subprocess.Popen[bytes]:
        self.write(routes)
        self.process = subprocess.Popen([*self._args(self.conf), "-g", "daemon off;"], stdin=subprocess.DEVNULL)
        return self.process

    def update(self, routes: Routes) -> None:
        self.write(routes)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish open requests
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(5)


class FiguresTail:
    """Per-app figures from nginx's figures log, kept as the asyncio front keeps them (metrics.py).

    The log is read from where the last read stopped; past ``limit`` bytes it is renamed and nginx
    told to reopen its logs (SIGUSR1), and the old file is read to its end before the new one.
    """

    def __init__(self, log: Path, limit: int = 8 * 1024 * 1024) -> None:
        self.log = log
        self.limit = limit
        self.metrics = Metrics()
        self.fh: BinaryIO | None = None
        self.partial = b""

    def poll(self, nginx_pid: int | None) -> None:
        if self.fh is None:
            try:
                self.fh = open(self.log, "rb")  # kept open across polls; closed on rotation
            except FileNotFoundError:
                return
        self._read()
        size = os.fstat(self.fh.fileno()).st_size
        try:
            current = os.stat(self.log).st_ino
        except FileNotFoundError:
            current = None
        if current is not None and current != os.fstat(self.fh.fileno()).st_ino:
            self._read()  # rotated: finish the old file, then follow the new one
            self.fh.close()
            self.fh = None
        elif size > self.limit and nginx_pid:
            os.replace(self.log, self.log.with_suffix(".log.1"))
            os.kill(nginx_pid, signal.SIGUSR1)

    def _read(self) -> None:
        assert self.fh is not None
        data = self.partial + self.fh.read()
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            parts = line.decode("latin-1").replace(",", " ").split()
            if len(parts) < 3 or parts[0] == "-" or not parts[1].isdigit():
                continue
            seconds = parts[2]
            upstream = [p for p in parts[3:] if p.replace(".", "", 1).isdigit()]
            if upstream:
                seconds = upstream[-1]  # time to the app's response head, as the asyncio front measures
            try:
                self.metrics.record(parts[0], int(parts[1]), float(seconds))
            except ValueError:
                continue


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _load(path: str) -> Routes:
    return load_routes(path) if os.path.exists(path) else Routes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapps.front.nginx", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8001", help="what nginx listens on, e.g. 127.0.0.1:8001")
    parser.add_argument("--routes", required=True, help="the routes file the portal writes")
    parser.add_argument("--dir", help="directory for nginx.conf, the pid file, the log and temp files")
    parser.add_argument(
        "--nginx", default=None, help=f"the nginx binary (default: PORTAL_NGINX, else on PATH, else {NGINX})"
    )
    parser.add_argument("--workers", default="1", help="worker_processes (a number or auto)")
    parser.add_argument("--head-timeout", type=int, default=10, help="seconds a request head may take")
    parser.add_argument(
        "--idle-timeout", type=int, default=300, help="seconds a transfer may pass with no byte moving either way"
    )
    parser.add_argument("--metrics", help="a JSON file rewritten every second with per-app figures")
    add_trusted_proxy_option(parser)
    parser.add_argument("--print", action="store_true", help="print the config (an http-block include) and exit")
    args = parser.parse_args(argv)
    try:
        routes = _load(args.routes)
        if args.print:
            sys.stdout.write(render_nginx_config(routes, args.listen, include=True, idle_timeout=args.idle_timeout,
                                                 trusted_proxies=args.trusted_proxy))
            return 0
        if not args.dir:
            parser.error("--dir is needed to run nginx (or give --print)")
        front = NginxFront(
            args.dir,
            args.listen,
            args.nginx,
            args.workers,
            args.head_timeout,
            bool(args.metrics),
            idle_timeout=args.idle_timeout,
            trusted_proxies=args.trusted_proxy,
        )
        process = front.start(routes)
    except (RoutesError, OSError, json.JSONDecodeError) as exc:
        print(f"front: {exc}", file=sys.stderr)
        return 2
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stamp = _stamp(args.routes)
    figures = FiguresTail(front.figures_log) if front.figures_log else None
    written = polled = 0.0
    while not stopping and process.poll() is None:
        # The routes file as often as the asyncio front looks at it; nginx's log for the figures
        # five times a second, as before.
        time.sleep(ROUTES_POLL)
        if figures is not None and args.metrics and time.monotonic() - polled >= 0.2:
            polled = time.monotonic()
            figures.poll(process.pid)
            if time.monotonic() - written >= 1.0:
                written = time.monotonic()
                try:
                    figures.metrics.write(args.metrics)
                except OSError as exc:
                    print(f"front: cannot write {args.metrics}: {exc}", file=sys.stderr, flush=True)
        new = _stamp(args.routes)
        if new != stamp:
            stamp = new
            try:
                front.update(_load(args.routes))
            except (RoutesError, OSError) as exc:
                print(f"front: keeping the current routes: {exc}", file=sys.stderr, flush=True)
    front.stop()
    return 0 if stopping else (process.returncode or 1)


if __name__ == "__main__":
    sys.exit(main())


@dataclass(frozen=True)
class EdgeApp:
    """One application as the edge routes it: its path, the hosts it runs on, their fronts."""

    path: str
    hosts: tuple[str, ...]
    servers: tuple[str, ...]  # HOST:PORT of each host's front
    n: int = 0


_SERVER = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$")


def render_edge_config(apps: Sequence[EdgeApp], listen: str = "8080", *, include: bool = True,
                       prefix: str | os.PathLike[str] = ".", worker_processes: int | str = 1,
                       server_name: str = "_", max_fails: int = 1, fail_timeout: int = 10,
                       connect_timeout: int = 1, retry_timeout: int = 15, idle_timeout: int = 300) -> str:
    """The edge's nginx configuration (edge.conf.j2): an upstream per application listing the fronts
    of its hosts, and a location per path. Raises RoutesError for a path or an address nginx
    could not take as written."""
    if not include:
        _safe_path(str(prefix), "the --complete folder")
    checked = []
    for n, app in enumerate(sorted(apps, key=lambda a: a.path), 1):
        _safe_path(app.path, "application path")
        for server in app.servers:
            if not _SERVER.fullmatch(server):
                raise RoutesError(f"front address {server!r} of {app.path} is not HOST:PORT: set "
                                  "PORTAL_HOST_ADDRESS on that host to its address, e.g. 10.0.0.5")
        if app.servers:
            checked.append(EdgeApp(app.path, app.hosts, app.servers, n))
    return _TEMPLATES.get_template("edge.conf.j2").render(
        apps=checked, listen=listen, include=include, prefix=str(prefix), worker_processes=worker_processes,
        server_name=server_name, max_fails=max_fails, fail_timeout=fail_timeout,
        connect_timeout=connect_timeout, retry_timeout=retry_timeout, idle_timeout=idle_timeout,
    )
