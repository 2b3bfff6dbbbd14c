"""nginx as the front: a config rendered from the routes file, and a runner that keeps it current.

``render_nginx_config(routes, listen=...)`` gives a complete nginx.conf (or, with
``include=True``, the maps, upstreams and server block to include in an operator's own ``http {}``)
that behaves as the asyncio front does (routes.py's docstring): longest-prefix locations, the
slash redirect, keep-alive upstreams on each app's unix socket, streaming both ways (no request or
response buffering), websocket upgrade headers for ASGI apps, ``Host $http_host`` (``$host``
drops the port), X-Forwarded-*, the portal's cookies removed by a chain of ``map``s (and an
application's Set-Cookie of them confined: ``_set_cookie_rules``), the normalised path passed on
and encoded slashes and dot segments refused, static aliases that follow no symlink, and
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
from pathlib import Path
from typing import BinaryIO

from portal import paths
from portal.process.states import RUNNING

from .forwarding import Network, add_trusted_proxy_option
from .metrics import Metrics
from .routes import (
    PORTAL_HOST_PATTERN,
    REFUSED_PATHS,
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
# Headers a client could use to tell an app it came over https, from elsewhere or under another
# mount: removed (an empty value makes nginx drop a header), as the asyncio front drops them.
SPOOFABLE_HEADERS = (
    "Forwarded",
    "X-Forwarded-Ssl",
    "X-Forwarded-Protocol",
    "X-Forwarded-Scheme",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Scheme",
    "X-Url-Scheme",
    "X-Real-Ip",
    "Front-End-Https",
)
MIME_TYPES = "/etc/nginx/mime.types"
PROXY_BUFFER = "64k"  # the asyncio front's CHUNK (http1.py): its pieces, and its limit of a response head
STATIC_404 = "/@webapps/static-404"
STATIC_NOT_FOUND = "404 Not Found: no such static file\n"  # the asyncio front's words
_UNSAFE = re.compile(r"[\s\"'$;{}\\#]")


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


def _portal_origin_map(port: int, proto: str, hosts: tuple[str, ...]) -> list[str]:
    """$webapps_portal_origin: the request's host on the portal's port, when the host is one the
    portal answers to (routes.portal_origin's rule; $host is lowercase, without its port), else
    empty."""
    lines = [
        "    # The 503 pages link to the application's page in the portal: this host, if the portal",
        "    # answers to that name, on the portal's port.",
        "    map $host $webapps_portal_origin {",
        '        default "";',
    ]
    pattern = portal_hosts_pattern(hosts)
    if pattern:
        regex = f"~^(?=(?:{PORTAL_HOST_PATTERN})$)(?<webapps_portal_host>{pattern})$"
        lines.append(f'        {_quote(regex)} "{proto}://$webapps_portal_host:{port}";')
    return [*lines, "    }"]


def _page_location(uri: str, page: Page, fmt: str, unconnected: Page | None = None, portal: bool = False) -> list[str]:
    """The internal location that answers ``page``; with ``unconnected``, that page instead when
    not a byte came from the application (the socket is missing or refuses, or it closed at once
    as a dying worker does), which nginx reports as 502 like a malformed answer."""
    body = _page_body(page, fmt, portal)
    ctype = "application/json" if fmt == "json" else "text/html; charset=utf-8"
    lines = [
        f"        location = {uri} {{",
        "            internal;",
        f"            set $webapps_app {page.application or '-'};",
        "            types { }",
        f"            default_type {_quote(ctype)};",
        "            add_header Cache-Control no-store always;",
    ]
    if unconnected is not None:
        # "if" holding only add_header and return is safe in a location (nginx's "If is evil" page).
        lines += [
            '            if ($upstream_bytes_received ~ "^[-0, :]*$") {',
            "                add_header Cache-Control no-store always;",
            *([f"                add_header Retry-After {unconnected.retry_after} always;"]
              if unconnected.retry_after else []),
            f"                return {unconnected.status} {_quote(_page_body(unconnected, fmt))};",
            "            }",
        ]
    if portal:
        # A host that is no plain name or address gets no link, as in the asyncio front.
        lines += [
            '            if ($webapps_portal_origin = "") {',
            "                add_header Cache-Control no-store always;",
            *([f"                add_header Retry-After {page.retry_after} always;"] if page.retry_after else []),
            f"                return {page.status} {_quote(_page_body(page, fmt))};",
            "            }",
        ]
    if page.retry_after:
        lines.append(f"            add_header Retry-After {page.retry_after} always;")
    lines += [f"            return {page.status} {_quote(body)};", "        }"]
    return lines


def _pages(uri_base: str, page: Page, unconnected: Page | None = None, portal: bool = False) -> list[str]:
    return (_page_location(uri_base + ".html", page, "html", unconnected, portal)
            + _page_location(uri_base + ".json", page, "json", unconnected, portal))


def _cookie_maps(names: tuple[str, ...]) -> tuple[list[str], str]:
    """Maps that remove each named cookie (twice, for a duplicate) and tidy the separators left."""
    lines: list[str] = []
    source = "$http_cookie"
    n = 0
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9!#%&'*+.^_`|~-]+", name) or "'" in name:
            raise RoutesError(f"cookie name {name!r} cannot be stripped by nginx: use letters, digits, - and _")
        for _ in range(2):
            n += 1
            target = f"$webapps_cookie_{n}"
            a, b = f"webapps_c{n}a", f"webapps_c{n}b"
            pattern = rf"~^(?<{a}>|.*?;\s*){re.escape(name)}=[^;]*(?:;\s*)?(?<{b}>.*)$"
            lines += [
                f"    map {source} {target} {{",
                f'        {_quote(pattern)} "${a}${b}";',
                f"        default {source};",
                "    }",
            ]
            source = target
    if n:
        n += 1
        target = f"$webapps_cookie_{n}"
        lines += [
            f"    map {source} {target} {{",
            r'        "~^(?<webapps_ctidy>.*?)[;\s]+$" "$webapps_ctidy";',
            f"        default {source};",
            "    }",
        ]
        source = target
    return lines, source


def _set_cookie_rules(mount: str, names: tuple[str, ...]) -> list[str]:
    """What nginx 1.22 can do against an application's Set-Cookie of the portal's cookie names.

    Its stock modules cannot drop one Set-Cookie line by its cookie's name (proxy_hide_header drops
    them all; headers-more and njs are not in Debian's nginx package, and $upstream_http_set_cookie
    holds only the first line before 1.23). What they can do, per cookie as nginx parses it:

    - every cookie of the application gets a Path under its mount (proxy_cookie_path rewrites each
      Path attribute that is not; a cookie without one gets the browser's default, the request's
      folder, which is under the mount too), so a browser sends it back only under the mount, and
      never to the portal's pages unless the mount is also a path of the portal's (``/admin``);
      the portal's own cookies, at Path=/, are never overwritten, since a cookie is the name, the
      host and the path together;
    - the portal's names get ``SameSite=None`` without ``Secure``, which Chromium-based browsers
      refuse outright (since Chrome 80), so for them the cookie never exists.

    The asyncio front removes such lines (server.py); docs/security.md says what each guarantees.
    """
    lines = []
    if mount != "/":
        lines.append(f"            proxy_cookie_path {_quote('~^(?!' + re.escape(mount) + '(?:/|$))')} {mount};")
    pattern = "~^(?:" + "|".join(re.escape(name) for name in names) + ")$"
    lines.append(f"            proxy_cookie_flags {_quote(pattern)} nosecure samesite=none;")
    return lines


def render_http_block(
    routes: Routes,
    listen: str = "127.0.0.1:8001",
    *,
    server_name: str = "_",
    keepalive: int = 16,
    head_timeout: int = 10,
    figures_log: str | None = None,
    idle_timeout: int = 300,
    lenient: bool = False,
    trusted_proxies: Sequence[Network] = (),
) -> str:
    """The part that goes inside ``http { }``: maps, upstreams and the apps' server.

    Applications get one address in ``X-Forwarded-For``: ``$remote_addr``, which the realip module
    takes from the ``X-Forwarded-For`` of a proxy in ``trusted_proxies`` (webapps/front/forwarding.py).

    ``idle_timeout`` bounds the silence of a transfer either way (a stalled upload, an app that does
    not answer, a client that stops reading), as the asyncio front's own ``idle_timeout`` does.
    A socket or static folder whose path nginx cannot use raises RoutesError, or with
    ``lenient`` (the runner's choice: one such application must not stop the others' changes)
    makes that application answer 503 saying so.
    """
    out: list[str] = [
        "    # Generated from the portal's routes file by webapps.front.nginx; do not edit by hand.",
        "    # JSON error pages when Accept names application/json before text/html.",
        "    map $http_accept $webapps_fmt {",
        "        default html;",
        '        "~*text/html.*application/json" html;',
        '        "~*application/json" json;',
        "    }",
        "    # Connection: upgrade only when the client asks for a websocket (ASGI apps).",
        "    map $http_upgrade $webapps_connection {",
        "        default upgrade;",
        '        "" "";',
        "    }",
    ]
    # Paths both fronts refuse (routes.refused_path): in the path of the raw request, not its query.
    out += ["    map $request_uri $webapps_refused_path {", '        default "";']
    out += [f"        {_quote('~^[^?]*' + pattern.replace('(?:/|$)', '(?:[/?]|$)'))} {key};"
            for key, (pattern, _) in REFUSED_PATHS.items()]
    out.append("    }")
    cookie_lines, cookie_var = _cookie_maps(routes.strip_cookies)
    out += cookie_lines
    server: list[str] = [
        "    server {",
        f"        listen {listen};",
        f"        server_name {server_name};",
        "        absolute_redirect off;",
        "        client_max_body_size 0;",
        f"        client_header_timeout {head_timeout}s;",
        f"        client_body_timeout {idle_timeout}s;",
        f"        send_timeout {idle_timeout}s;",
        "        large_client_header_buffers 4 32k;",
        "        server_tokens off;",
        "        if ($webapps_refused_path) {",
        "            rewrite ^ /@webapps/400-$webapps_refused_path last;",
        "        }",
    ]
    for key, (_, message) in REFUSED_PATHS.items():
        server += [
            f"        location = /@webapps/400-{key} {{",
            "            internal;",
            "            types { }",
            "            default_type text/plain;",
            "            add_header Cache-Control no-store always;",
            f"            return 400 {_quote('400 Bad Request: ' + message + chr(10))};",
            "        }",
        ]
    proto = "$scheme"
    if trusted_proxies:
        server += [f"        set_real_ip_from {network};" for network in trusted_proxies]
        server += ["        real_ip_header X-Forwarded-For;", "        real_ip_recursive on;"]
        # A trusted proxy's X-Forwarded-Proto (http or https) is believed; anyone else's is not.
        out += [
            "    geo $realip_remote_addr $webapps_from_proxy {",
            "        default 0;",
            *(f"        {network} 1;" for network in trusted_proxies),
            "    }",
            '    map "$webapps_from_proxy:$http_x_forwarded_proto" $webapps_proto {',
            "        default $scheme;",
            '        "1:https" https;',
            '        "1:http" http;',
            "    }",
        ]
        proto = "$webapps_proto"
    if routes.portal_port:
        out += _portal_origin_map(routes.portal_port, proto, routes.portal_hosts)
    if figures_log:
        # One short line per request, read by the runner for the per-app figures (metrics.py).
        out.append("    log_format webapps_figures '$webapps_app $status $request_time $upstream_header_time';")
        server += [
            "        set $webapps_app -;",
            f"        access_log {_safe_path(figures_log, 'figures log')} webapps_figures buffer=16k flush=1s;",
        ]
    has_root = has_statics = False
    for i, route in enumerate(routes.apps, 1):
        mount = route.path
        base = "/" if mount == "/" else mount + "/"
        has_root = has_root or mount == "/"
        pages = f"/@webapps/{i}"
        server.append(f"        # {mount}: {route.protocol}, {route.state}")
        if mount != "/":
            server.append(f"        location = {mount} {{ return 301 {base}$is_args$args; }}")
        page = unavailable_page(route) if route.state != RUNNING else None
        try:
            statics = [(s.url, _safe_path(s.dir.rstrip("/") + "/", f"static dir of {mount}")) for s in route.static]
            _safe_path(route.socket, f"socket of {mount}")
        except RoutesError as exc:
            if not lenient:
                raise
            statics = []
            page = Page(503, f"application {mount} cannot be served by nginx", mount, route.state, str(exc))
        for url, directory in statics:
            # The application owns the folder: no symlink under it is followed (nginx opens each
            # component with O_NOFOLLOW), whatever it points to, so that a link swapped in for a
            # file cannot serve the portal's files; refused as "no such static file", as the
            # asyncio front does (webapps/front/files.py).
            server += [
                f"        location ^~ {url}/ {{",
                f"            alias {directory};",
                "            disable_symlinks on from=$document_root;",
                f"            error_page 403 404 =404 {STATIC_404};",
                "        }",
            ]
            has_statics = True
        if page is not None:
            server += [
                f"        location {base} {{",
                f"            set $webapps_app {mount};",
                f"            error_page 503 {pages}/503.$webapps_fmt;",
                "            return 503;",
                "        }",
                *_pages(f"{pages}/503", page, portal=bool(routes.portal_port)),
            ]
            continue
        sock = _safe_path(route.socket, f"socket of {mount}")
        out += [
            f"    upstream webapps_{i} {{",
            f"        server unix:{sock};",
            f"        keepalive {keepalive};",
            "    }",
        ]
        server += [
            f"        location {base} {{",
            f"            set $webapps_app {mount};",
            # With a URI part, nginx passes the path it routed by (decoded, normalised, escaped
            # again), not the raw one (routes.py, "Paths"); the query as it came.
            f"            proxy_pass http://webapps_{i}{base};",
            "            proxy_http_version 1.1;",
            "            proxy_set_header Host $http_host;",
            "            proxy_set_header X-Forwarded-For $remote_addr;",
            f"            proxy_set_header X-Forwarded-Proto {proto};",
            "            proxy_set_header X-Forwarded-Host $http_host;",
            *(f'            proxy_set_header {name} "";' for name in SPOOFABLE_HEADERS),
        ]
        if route.protocol == "asgi":
            server += [
                "            proxy_set_header Upgrade $http_upgrade;",
                "            proxy_set_header Connection $webapps_connection;",
                "            proxy_read_timeout 1h;",
            ]
        else:
            server += [
                '            proxy_set_header Connection "";',
                f"            proxy_read_timeout {idle_timeout}s;",
                f"            proxy_send_timeout {idle_timeout}s;",
            ]
        if routes.strip_cookies:
            server.append(f"            proxy_set_header Cookie {cookie_var};")
            server += _set_cookie_rules(mount, routes.strip_cookies)
        server += [
            "            proxy_request_buffering off;",
            "            proxy_buffering off;",
            # The one buffer of an unbuffered proxy: an answer up to this size is read in one piece
            # and sent to the client in one write (at the default 4k page, a 6 KB answer took two of
            # each, each waking the client); and a head up to it is accepted, as the asyncio front
            # accepts one up to 64 KiB (the default answered a head over 4k with a 502).
            f"            proxy_buffer_size {PROXY_BUFFER};",
            # Used only if an app turns buffering on (X-Accel-Buffering: yes); set because nginx -t
            # wants the busy buffers (2 x proxy_buffer_size) under the sum of these less one.
            f"            proxy_buffers 4 {PROXY_BUFFER};",
            # "=": the page's own status, which is 503 when no connection could be made (_page_location).
            f"            error_page 502 = {pages}/502.$webapps_fmt;",
            f"            error_page 504 {pages}/504.$webapps_fmt;",
            "        }",
            *_pages(f"{pages}/502", bad_gateway_page(route, "the application sent a malformed answer or closed the "
                                                            "connection"), not_answering_page(route)),
            *_pages(f"{pages}/504", gateway_timeout_page(route, idle_timeout)),
        ]
    if has_statics:
        server += [
            f"        location = {STATIC_404} {{",
            "            internal;",
            "            types { }",
            "            default_type text/plain;",
            "            add_header Cache-Control no-store always;",
            f"            return 404 {_quote(STATIC_NOT_FOUND)};",
            "        }",
        ]
    if not has_root:
        server += [
            "        location / {",
            "            error_page 404 /@webapps/404.$webapps_fmt;",
            "            return 404;",
            "        }",
            *_pages("/@webapps/404", not_found_page()),
        ]
    server.append("    }")
    return "\n".join(out + server) + "\n"


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
    """A complete nginx.conf for the routes (or only the http-block part when ``include``).

    ``prefix`` is the directory holding the pid file, the error log and the temp paths; ``user``
    the account the workers run as when nginx starts as root (the owner of the apps' sockets).
    """
    block = render_http_block(
        routes,
        listen,
        server_name=server_name,
        keepalive=keepalive,
        head_timeout=head_timeout,
        figures_log=figures_log,
        idle_timeout=idle_timeout,
        lenient=lenient,
        trusted_proxies=trusted_proxies,
    )
    if include:
        return block
    d = _safe_path(str(Path(prefix).resolve()), "nginx directory")
    head = [
        "# Generated by webapps.front.nginx from the portal's routes file; do not edit by hand.",
        f"worker_processes {worker_processes};",
        f"pid {d}/nginx.pid;",
        f"error_log {d}/error.log warn;",
    ]
    if user:
        head.append(f"user {user};")
    types = (
        f"    include {mime_types};" if os.path.exists(mime_types) else "    types { text/html html; text/css css; }"
    )
    http = [
        "events { worker_connections 1024; }",
        "http {",
        types,
        "    default_type application/octet-stream;",
        "    access_log off;",
        "    sendfile on;",
        "    tcp_nodelay on;",
        "    keepalive_timeout 75s;",
        "    keepalive_requests 10000;",
        f"    client_body_temp_path {d}/tmp/body;",
        f"    proxy_temp_path {d}/tmp/proxy;",
        f"    fastcgi_temp_path {d}/tmp/fastcgi;",
        f"    uwsgi_temp_path {d}/tmp/uwsgi;",
        f"    scgi_temp_path {d}/tmp/scgi;",
    ]
    return "\n".join(head + http) + "\n" + block + "}\n"


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
    written = 0.0
    while not stopping and process.poll() is None:
        time.sleep(0.2)
        if figures is not None and args.metrics:
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
