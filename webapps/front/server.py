"""The lean asyncio front: HTTP/1.1 on the apps port, routed to each application's unix socket.

Written by hand on asyncio streams rather than on an HTTP framework, for speed: a proxy built on
aiohttp measured 0.19-0.75x of the app served directly, because it parses every request and
response into objects and re-serialises them. This front parses only what routing and framing
need (the request line, the headers it changes, the body's length or chunking) and copies
everything else as bytes, keeping a small pool of kept-alive connections to each app's socket.
Parsing is defensive: an oversized head is answered 431, a malformed one 400, a head that does
not arrive within ``head_timeout`` 408; no input makes it crash or print a traceback to a client.
An exchange on which no byte moves either way for ``idle_timeout`` seconds (a stalled upload, an
app that never answers, a client that stops reading a download) is closed on both sides, as
nginx's body, read and send timeouts do; a websocket may stay quiet for ``websocket_timeout``.

Bodies stream both ways in pieces of at most ``CHUNK`` bytes, each written only after the other
side has drained (StreamWriter.drain), so a 50 MB upload or download costs a few hundred KiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import mimetypes
import os
import sys
import time
from collections.abc import Sequence
from email.utils import formatdate

from portal.process.nofollow import socket_path
from portal.process.states import RUNNING

from .files import open_beneath
from .forwarding import Network, client_address, forwarded_proto
from .http1 import (
    CHUNK,
    HEAD_LIMIT,
    REASONS,
    RESPONSE_DROP,
    Gone,
    HttpError,
    Request,
    Stream,
    copy_chunked,
    copy_length,
    copy_until_eof,
    pipe,
    response_bytes,
    routing_path,
    strip_cookies,
)
from .metrics import Metrics
from .routes import (
    ROUTES_POLL,
    Page,
    Route,
    Routes,
    RoutesError,
    bad_gateway_page,
    forward_path,
    gateway_timeout_page,
    load_routes,
    not_answering_page,
    not_found_page,
    portal_origin,
    refused_path,
    unavailable_page,
)
from .routes import wants_json as _wants_json


class Silent(Gone):
    """The application closed the connection without a byte of answer."""


# The front ------------------------------------------------------------------------------------


class Pool:
    """Idle kept-alive connections to one unix socket.

    A connection idle for more than ``idle_ttl`` seconds is dropped rather than reused, so that it
    is never one the app closed on its own keep-alive timeout (gunicorn's default is 2 s).
    """

    def __init__(self, path: str, max_idle: int = 32, idle_ttl: float = 1.0) -> None:
        self.path = path
        self.max_idle = max_idle
        self.idle_ttl = idle_ttl
        self.idle: list[tuple[Stream, float]] = []

    async def acquire(self) -> tuple[Stream, bool]:
        now = time.monotonic()
        while self.idle:
            conn, since = self.idle.pop()
            if now - since <= self.idle_ttl and conn.usable():
                return conn, True
            conn.close()
        # The socket lies in the application's own folder: a link put there must not send this
        # connection (root's, where the portal runs as root) to another socket.
        with socket_path(self.path) as target:
            reader, writer = await asyncio.open_unix_connection(target, limit=CHUNK)
        return Stream(reader, writer), False

    def release(self, conn: Stream) -> None:
        if len(self.idle) < self.max_idle and conn.usable():
            self.idle.append((conn, time.monotonic()))
        else:
            conn.close()

    def close(self) -> None:
        for conn, _ in self.idle:
            conn.close()
        self.idle.clear()


def _close_on_failure(conn: Stream, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        conn.close()


class Front:
    def __init__(
        self,
        routes_file: str,
        metrics_file: str | None = None,
        *,
        proto: str = "http",
        head_timeout: float = 10.0,
        keepalive_timeout: float = 75.0,
        idle_timeout: float = 300.0,
        websocket_timeout: float = 3600.0,
        # How often the routes file is looked at (one stat): a started application is routed within
        # this much of its keeper's report (it was 0.25 s, most of the wait between a start and
        # the first answer through the front; 20 stats a second cost nothing measurable).
        poll_interval: float = ROUTES_POLL,
        pool_size: int = 32,
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.routes_file = routes_file
        self.trusted_proxies = tuple(trusted_proxies)
        self.metrics_file = metrics_file
        self.proto = proto.encode()
        self.head_timeout = head_timeout
        self.keepalive_timeout = keepalive_timeout
        self.idle_timeout = idle_timeout
        self.websocket_timeout = websocket_timeout
        self.poll_interval = poll_interval
        self.pool_size = pool_size
        self.routes = Routes()
        self.strip: frozenset[bytes] = frozenset()
        self.pools: dict[str, Pool] = {}
        self.metrics = Metrics()
        self._stamp: tuple[int, int, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.waiting: dict[Stream, tuple[float, bool]] = {}
        # Exchanges in progress: client -> (the app's connection, seconds of silence allowed).
        self.exchanges: dict[Stream, tuple[Stream, float]] = {}
        self.timed_out: dict[Stream, float] = {}  # client -> when its exchange's app side was cut

    # Routes --------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Load the routes file if it changed; a broken file keeps the routes in force."""
        try:
            st = os.stat(self.routes_file)
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            routes = Routes()
        else:
            try:
                routes = load_routes(self.routes_file)
            except (RoutesError, OSError) as exc:
                print(f"front: keeping the current routes: {exc}", file=sys.stderr, flush=True)
                return False
        self.routes = routes
        self.strip = frozenset(name.encode() for name in routes.strip_cookies)
        sockets = {r.socket for r in routes.apps}
        for path in list(self.pools):
            if path not in sockets:
                self.pools.pop(path).close()
        return True

    async def _poll_routes(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            self.reload()

    async def _write_metrics(self) -> None:
        assert self.metrics_file
        while True:
            with contextlib.suppress(OSError):
                self.metrics.write(self.metrics_file)
            await asyncio.sleep(1.0)

    async def start(self, host: str, port: int) -> asyncio.Server:
        self.reload()
        self._tasks.append(asyncio.create_task(self._poll_routes()))
        self._tasks.append(asyncio.create_task(self._sweep()))
        if self.metrics_file:
            self._tasks.append(asyncio.create_task(self._write_metrics()))
        return await asyncio.start_server(self.handle, host, port, limit=CHUNK, backlog=1024, reuse_address=True)

    def pool(self, route: Route) -> Pool:
        pool = self.pools.get(route.socket)
        if pool is None:
            pool = self.pools[route.socket] = Pool(route.socket, self.pool_size)
        return pool

    # Connections ---------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Stream(reader, writer)
        peer = writer.get_extra_info("peername")
        ip = (peer[0] if isinstance(peer, tuple) else "unknown").encode()
        try:
            first = True
            while True:
                try:
                    head = await self._read_request_head(client, first)
                except HttpError as exc:
                    await self._error(client, exc)
                    return
                if head is None:
                    return
                first = False
                try:
                    request = Request(head)
                except HttpError as exc:
                    await self._error(client, exc)
                    return
                if not await self.serve(client, request, ip):
                    return
        except (Gone, ConnectionError, OSError):
            pass
        except HttpError:
            pass  # a broken chunked body mid-stream: nothing sensible can be answered any more
        except asyncio.CancelledError:
            pass  # the front is shutting down: the connection just closes
        except Exception as exc:  # a defect here must cost one connection, never the front
            print(f"front: connection from {ip.decode()} ended by {exc!r}", file=sys.stderr, flush=True)
        finally:
            client.close()

    async def _read_request_head(self, client: Stream, first: bool) -> bytes | None:
        if b"\r\n\r\n" in client.buf:
            return await client.read_head()  # pipelined: already here
        # Deadlines are kept by one sweeper task rather than a timer per request (cheaper): an idle
        # kept-alive connection may wait keepalive_timeout for a first byte, a head that has begun
        # (or a new connection's first) must be whole within head_timeout, else 408 and close.
        started = bool(client.buf) or first
        self.waiting[client] = (time.monotonic() + (self.head_timeout if started else self.keepalive_timeout), started)
        try:
            if not client.buf:
                if not await client.fill():
                    return None
                if b"\r\n\r\n" not in client.buf:
                    self.waiting[client] = (time.monotonic() + self.head_timeout, True)
            return await client.read_head()
        finally:
            self.waiting.pop(client, None)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for client, (deadline, answer) in list(self.waiting.items()):
                if now > deadline:
                    del self.waiting[client]
                    if answer:
                        body = b"408 Request Timeout: the request head did not arrive in time\n"
                        client.writer.write(response_bytes(408, body, b"text/plain; charset=utf-8", keep=False))
                    client.close()  # the pending read then ends the connection's handler
            for client, (conn, limit) in list(self.exchanges.items()):
                cut = self.timed_out.get(client)
                if cut is None and now - max(client.seen, conn.seen) > limit:
                    # The app's side first: an exchange still waiting for the answer then gets a 504.
                    self.timed_out[client] = now
                    conn.close()
                elif cut is not None and now - cut > 1.0:
                    del self.exchanges[client]
                    client.close()  # a client that stopped reading: its pending drain ends too

    async def _error(self, client: Stream, exc: HttpError) -> None:
        body = f"{exc.status} {REASONS.get(exc.status, 'Error')}: {exc.message}\n".encode()
        with contextlib.suppress(Gone):
            await client.send(response_bytes(exc.status, body, b"text/plain; charset=utf-8", keep=False))

    async def _page(self, client: Stream, request: Request, page: Page, keep: bool, portal: str = "") -> bool:
        extra = [b"Retry-After: %d" % page.retry_after] if page.retry_after else []
        if _wants_json(request.accept.decode("latin-1")):
            body, ctype = page.as_json(portal), b"application/json"
        else:
            body, ctype = page.as_html(portal), b"text/html; charset=utf-8"
        keep = keep and request.keep_alive and not request.body
        await client.send(response_bytes(page.status, body, ctype, extra, keep, request.method == b"HEAD"))
        return keep

    async def serve(self, client: Stream, request: Request, ip: bytes) -> bool:
        """Answer one request; True when the client connection can carry another."""
        started = time.monotonic()
        raw_path, sep, query = request.target.decode("latin-1").partition("?")
        refused = refused_path(raw_path)
        if refused:
            await self._error(client, HttpError(400, refused))
            return False
        try:
            path = routing_path(raw_path)
        except (HttpError, UnicodeDecodeError) as exc:
            await self._error(client, exc if isinstance(exc, HttpError) else HttpError(400, "the path is not UTF-8"))
            return False
        if path != raw_path or "%" in raw_path:
            # The application gets the path the request was routed by, not the raw one (routes.py).
            request.target = (forward_path(path) + sep + query).encode("latin-1")
        route = self.routes.match(path)
        if route is None:
            return await self._page(client, request, not_found_page(), True)
        for static in route.static:
            if path.startswith(static.url + "/"):
                return await self.serve_static(client, request, static.dir, path[len(static.url) + 1 :])
        if path == route.path and route.path != "/":
            location = route.path + "/" + ("?" + query if query else "")
            keep = request.keep_alive and not request.body
            await client.send(
                response_bytes(301, b"", b"text/plain", [b"Location: " + location.encode("latin-1")], keep)
            )
            return keep
        if route.state != RUNNING:
            # The link to the application's page: the host the request came by, if the portal
            # answers to that name, on the portal's port.
            proto = forwarded_proto(ip.decode(), request.forwarded_proto, self.trusted_proxies, self.proto).decode()
            host = request.host.decode("latin-1") if request.host is not None else None
            portal = portal_origin(proto, host, self.routes.portal_port, self.routes.portal_hosts)
            keep = await self._page(client, request, unavailable_page(route), True, portal)
            self.metrics.record(route.path, 503, time.monotonic() - started)
            return keep
        return await self.proxy(client, request, route, ip, started)

    async def serve_static(self, client: Stream, request: Request, directory: str, rel: str) -> bool:
        if request.method not in (b"GET", b"HEAD"):
            await client.send(
                response_bytes(
                    405, b"static files answer GET and HEAD only\n", b"text/plain", [b"Allow: GET, HEAD"], False
                )
            )
            return False
        # One open beneath the folder that follows no symlink, then only that descriptor (files.py
        # says why): the application owns the folder and may swap a file for a link at any moment.
        opened = open_beneath(directory, rel)
        if opened is None:
            keep = request.keep_alive and not request.body
            await client.send(response_bytes(404, b"404 Not Found: no such static file\n", b"text/plain", keep=keep))
            return keep
        fd, st = opened
        with open(fd, "rb") as fh:  # closed by the with, after streaming
            ctype = mimetypes.guess_type(rel)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
                ctype += "; charset=utf-8"
            keep = request.keep_alive and not request.body
            head = [
                b"HTTP/1.1 200 OK",
                b"Content-Type: " + ctype.encode(),
                b"Content-Length: %d" % st.st_size,
                b"Last-Modified: " + formatdate(st.st_mtime, usegmt=True).encode(),
            ]
            if not keep:
                head.append(b"Connection: close")
            await client.send(b"\r\n".join(head) + b"\r\n\r\n")
            if request.method == b"GET":
                # Plain reads rather than loop.sendfile: uvloop's transports do not offer it. No more
                # than the length announced, should the application append to the file meanwhile.
                remaining = st.st_size
                while remaining > 0 and (data := fh.read(min(CHUNK, remaining))):
                    remaining -= len(data)
                    await client.send(data)
                if remaining:
                    return False  # it shrank: the answer is short, and the connection cannot go on
        return keep

    def _upstream_head(self, request: Request, route: Route, ip: bytes, websocket: bool) -> bytes:
        lines = [request.method + b" " + request.target + b" HTTP/1.1"]
        lines.append(b"Host: " + (request.host if request.host is not None else b"localhost"))
        lines += request.headers
        cookies = strip_cookies(request.cookies, self.strip) if self.strip else request.cookies
        if cookies:
            lines.append(b"Cookie: " + b"; ".join(cookies))
        # One address, never the client's own list (webapps/front/forwarding.py says why).
        peer = ip.decode()
        client = client_address(peer, request.forwarded_for, self.trusted_proxies)
        lines.append(b"X-Forwarded-For: " + client.encode())
        proto = forwarded_proto(peer, request.forwarded_proto, self.trusted_proxies, self.proto)
        lines.append(b"X-Forwarded-Proto: " + proto)
        if request.host is not None:
            lines.append(b"X-Forwarded-Host: " + request.host)
        if request.body == "chunked":
            lines.append(b"Transfer-Encoding: chunked")
        elif request.body:
            lines.append(b"Content-Length: %d" % request.length)
        if websocket:
            lines.append(b"Connection: Upgrade")
            lines.append(b"Upgrade: " + (request.upgrade or b""))
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _send_body(self, client: Stream, conn: Stream, request: Request) -> None:
        if request.body == "chunked":
            await copy_chunked(client, conn)
        else:
            await copy_length(client, conn, request.length)

    async def proxy(self, client: Stream, request: Request, route: Route, ip: bytes, started: float) -> bool:
        try:
            return await self._proxy(client, request, route, ip, started)
        finally:
            self.exchanges.pop(client, None)
            self.timed_out.pop(client, None)

    async def _proxy(self, client: Stream, request: Request, route: Route, ip: bytes, started: float) -> bool:
        websocket = route.protocol == "asgi" and request.upgrade is not None
        limit = self.websocket_timeout if websocket else self.idle_timeout
        head = self._upstream_head(request, route, ip, websocket)
        pool = self.pool(route)
        # A reused connection may have been closed by the app just now; a request without a body
        # is then retried once on a fresh one. A request with a body is never replayed.
        for attempt in range(2):
            try:
                conn, reused = await pool.acquire()
            except (OSError, ConnectionError):
                # No connection at all (socket missing or refused): restarting, 503 (not_answering_page).
                self.metrics.record(route.path, 503, time.monotonic() - started)
                return await self._page(client, request, not_answering_page(route), True)
            body_task = None
            conn.seen = client.seen = time.monotonic()
            self.exchanges[client] = (conn, limit)
            try:
                conn.writer.write(head)
                if request.body == "length" and len(client.buf) >= request.length:
                    conn.writer.write(bytes(client.buf[: request.length]))
                    del client.buf[: request.length]
                elif request.body:
                    body_task = asyncio.create_task(self._send_body(client, conn, request))
                    # A body that breaks off or is malformed ends the exchange with the app too.
                    body_task.add_done_callback(functools.partial(_close_on_failure, conn))
                response_head = await self._response_head(conn, client)
            except (Gone, HttpError) as exc:
                conn.close()
                if body_task is not None:
                    body_task.cancel()
                    with contextlib.suppress(BaseException):
                        await body_task
                    if not body_task.cancelled() and isinstance(body_task.exception(), HttpError):
                        await self._error(client, body_task.exception())  # the client's framing: 400
                        return False
                if client in self.timed_out:
                    self.metrics.record(route.path, 504, time.monotonic() - started)
                    await self._page(client, request, gateway_timeout_page(route, limit), False)
                    return False
                if reused and attempt == 0 and not request.body:
                    continue
                if isinstance(exc, Silent):
                    # Closed without a byte of answer, as a worker dying with its master does.
                    self.metrics.record(route.path, 503, time.monotonic() - started)
                    await self._page(client, request, not_answering_page(route), False)
                    return False
                self.metrics.record(route.path, 502, time.monotonic() - started)
                reason = exc.message if isinstance(exc, HttpError) else "the application closed the connection"
                await self._page(client, request, bad_gateway_page(route, reason), False)
                return False
            break
        return await self._relay_response(
            client, conn, pool, request, route, response_head, body_task, started, websocket
        )

    async def _response_head(self, conn: Stream, client: Stream) -> bytes:
        while True:
            head = await conn.read_head(HEAD_LIMIT * 2)
            if head is None:
                raise Silent("the application closed the connection before answering")
            if head[9:10] == b"1" and head[9:12] != b"101":
                await client.send(head)  # 100 Continue, 103 Early Hints: pass on, then read the answer
                continue
            return head

    async def _relay_response(
        self,
        client: Stream,
        conn: Stream,
        pool: Pool,
        request: Request,
        route: Route,
        head: bytes,
        body_task: asyncio.Task[None] | None,
        started: float,
        websocket: bool,
    ) -> bool:
        lines = head[:-4].split(b"\r\n")
        try:
            status = int(lines[0][9:12])
        except ValueError:
            status = 0
        if not lines[0].startswith(b"HTTP/1.") or status < 100:
            conn.close()
            self.metrics.record(route.path, 502, time.monotonic() - started)
            await self._page(client, request, bad_gateway_page(route, "the application sent a malformed answer"), False)
            return False
        self.metrics.record(route.path, status, time.monotonic() - started)
        if status == 101:
            if not websocket:
                conn.close()
                await self._page(
                    client, request, bad_gateway_page(route, "unexpected 101 for a non-upgrade request"), False
                )
                return False
            await client.send(head)
            if body_task is not None:
                body_task.cancel()
            await asyncio.gather(pipe(client, conn), pipe(conn, client))
            conn.close()
            return False
        out = [lines[0]]
        length: int | None = None
        chunked = False
        upstream_close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname in RESPONSE_DROP:
                if lname == b"connection" and b"close" in value.lower():
                    upstream_close = True
                continue
            if lname == b"set-cookie" and value.partition(b"=")[0].strip() in self.strip:
                continue  # the portal's own cookie: an application must not set it for the portal's host
            if lname == b"content-length":
                length = int(value.strip()) if value.strip().isdigit() else None
            elif lname == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
                if request.version == b"HTTP/1.0":
                    continue
            out.append(line)
        no_body = request.method == b"HEAD" or status in (204, 304) or 100 <= status < 200
        until_eof = not no_body and not chunked and length is None
        keep = request.keep_alive and not until_eof and not (request.version == b"HTTP/1.0" and chunked)
        if body_task is not None and not body_task.done():
            # Usually the upload's last write is just draining; an app that answered early
            # (a 413, say) while the client still sends means this connection cannot go on.
            await asyncio.wait([body_task], timeout=0.1)
            if not body_task.done():
                keep = False
        if not keep:
            out.append(b"Connection: close")
        response_head = b"\r\n".join(out) + b"\r\n\r\n"
        reusable = not upstream_close and not until_eof and not websocket
        try:
            if no_body:
                await client.send(response_head)
            elif length is not None and len(conn.buf) >= length:
                # The whole (small) body came with the head: one write, one segment.
                body = bytes(conn.buf[:length])
                del conn.buf[:length]
                await client.send(response_head + body)
            elif chunked:
                await client.send(response_head)
                await copy_chunked(conn, client, dechunk=request.version == b"HTTP/1.0")
            elif length is not None:
                await client.send(response_head)
                await copy_length(conn, client, length)
            else:
                await client.send(response_head)
                await copy_until_eof(conn, client)
        except (Gone, HttpError):
            conn.close()
            if body_task is not None:
                body_task.cancel()
            raise Gone("the response could not be relayed whole")
        if body_task is not None:
            if not body_task.done():
                body_task.cancel()
                reusable = False
            try:
                await body_task
            except (asyncio.CancelledError, Gone, HttpError):
                reusable = False
                keep = False
        if reusable:
            pool.release(conn)
        else:
            conn.close()
        return keep

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for pool in self.pools.values():
            pool.close()
