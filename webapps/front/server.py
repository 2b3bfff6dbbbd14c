"""The lean asyncio front: HTTP/1.1 on the apps port, routed to each application's unix socket.

Written by hand on asyncio streams rather than on an HTTP framework, for speed: a proxy built on
aiohttp measured 0.19-0.75x of the app served directly, because it parses every request and
response into objects and re-serialises them. This front parses only what routing and framing
need (the request line, the headers it changes, the body's length or chunking) and copies
everything else as bytes, keeping a small pool of kept-alive connections to each app's socket.
Parsing is defensive: an oversized head is answered 431, a malformed one 400, a head that does
not arrive within ``head_timeout`` 408; no input makes it crash or print a traceback to a client.

Bodies stream both ways in pieces of at most ``CHUNK`` bytes, each written only after the other
side has drained (StreamWriter.drain), so a 50 MB upload or download costs a few hundred KiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import re
import sys
import time
from email.utils import formatdate
from urllib.parse import unquote

from .metrics import Metrics
from .routes import Page, Route, Routes, RoutesError, bad_gateway_page, load_routes, not_found_page, unavailable_page
from .routes import wants_json as _wants_json

CHUNK = 64 * 1024
HEAD_LIMIT = 32 * 1024
LINE_LIMIT = 8 * 1024
_METHOD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN = _METHOD
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"transfer-encoding",
        b"content-length",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-for",
        b"cookie",
        b"host",
    }
)
_RESPONSE_DROP = frozenset({b"connection", b"keep-alive", b"proxy-connection"})
_REASONS = {
    301: "Moved Permanently",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Gone(Exception):
    """The peer on one side closed or reset the connection."""


class Stream:
    """A connection with its own read buffer, so that bytes read past a head are never lost."""

    __slots__ = ("buf", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()

    async def fill(self) -> bool:
        try:
            data = await self.reader.read(CHUNK)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            return False
        self.buf += data
        return True

    async def read_head(self, limit: int = HEAD_LIMIT) -> bytes | None:
        """The bytes up to and including the blank line; None at a clean EOF before any byte."""
        start = 0
        while True:
            end = self.buf.find(b"\r\n\r\n", start)
            if end >= 0:
                head = bytes(self.buf[: end + 4])
                del self.buf[: end + 4]
                return head
            if len(self.buf) > limit:
                raise HttpError(431, f"the request head is larger than {limit} bytes")
            start = max(0, len(self.buf) - 3)
            if not await self.fill():
                if self.buf:
                    raise Gone("the connection closed in the middle of a head")
                return None

    async def read_some(self, n: int = CHUNK) -> bytes:
        if self.buf:
            data = bytes(self.buf[:n])
            del self.buf[:n]
            return data
        try:
            data = await self.reader.read(n)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            raise Gone("the connection closed before the end of a body")
        return data

    async def read_line(self) -> bytes:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[: end + 1])
                del self.buf[: end + 1]
                return line
            if len(self.buf) > LINE_LIMIT:
                raise HttpError(400, "a chunk-size or trailer line is too long")
            if not await self.fill():
                raise Gone("the connection closed in a chunked body")

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            raise Gone("the peer closed the connection while data was being sent")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    def usable(self) -> bool:
        return not self.buf and not self.writer.is_closing() and not self.reader.at_eof()


# Body relays ------------------------------------------------------------------------------------


async def copy_length(src: Stream, dst: Stream, n: int) -> None:
    while n > 0:
        data = await src.read_some(min(n, CHUNK))
        n -= len(data)
        await dst.send(data)


async def copy_chunked(src: Stream, dst: Stream, dechunk: bool = False) -> None:
    """Relay a chunked body as it is (or only its data when ``dechunk``), checking its framing."""
    while True:
        line = await src.read_line()
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
            if size < 0 or not size_text or size_text.startswith((b"-", b"+", b"0x", b"0X")):
                raise ValueError
        except ValueError:
            raise HttpError(400, "bad chunk size line in a chunked body")
        if not dechunk:
            dst.writer.write(line)
        if size == 0:
            while True:  # trailers, then the blank line
                trailer = await src.read_line()
                if not dechunk:
                    dst.writer.write(trailer)
                if trailer in (b"\r\n", b"\n"):
                    await dst.send(b"")
                    return
        await copy_length(src, dst, size)
        crlf = await src.read_line()
        if crlf not in (b"\r\n", b"\n"):
            raise HttpError(400, "a chunk is longer than its size line says")
        if not dechunk:
            dst.writer.write(crlf)


async def copy_until_eof(src: Stream, dst: Stream) -> None:
    while True:
        try:
            data = await src.read_some(CHUNK)
        except Gone:
            return
        await dst.send(data)


async def pipe(src: Stream, dst: Stream) -> None:
    with contextlib.suppress(Gone, asyncio.CancelledError):
        await copy_until_eof(src, dst)
    with contextlib.suppress(Exception):
        if dst.writer.can_write_eof():
            dst.writer.write_eof()


# Requests -------------------------------------------------------------------------------------


class Request:
    __slots__ = (
        "accept",
        "body",
        "connection",
        "cookies",
        "forwarded_for",
        "headers",
        "host",
        "keep_alive",
        "length",
        "method",
        "target",
        "upgrade",
        "version",
    )

    def __init__(self, head: bytes) -> None:
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            raise HttpError(400, "the request line must be METHOD SP /path SP HTTP/1.1")
        method, target, version = parts
        if not _METHOD.fullmatch(method):
            raise HttpError(400, "the request method is not a valid token")
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            if version.startswith(b"HTTP/"):
                raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are spoken here")
            raise HttpError(400, "the request line must end with HTTP/1.1")
        if not _TARGET.fullmatch(target):
            raise HttpError(400, "the request target must be a path starting with '/' (origin form)")
        self.method = method
        self.target = target
        self.version = version
        self.headers: list[bytes] = []  # header lines passed on unchanged
        self.host: bytes | None = None
        self.cookies: list[bytes] = []
        self.forwarded_for: list[bytes] = []
        self.accept = b""
        self.upgrade: bytes | None = None
        connection: list[bytes] = []
        lengths: set[bytes] = set()
        chunked = False
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not _TOKEN.fullmatch(name):
                raise HttpError(400, "a header line is malformed (no 'Name: value', or folded)")
            lname = name.lower()
            value = value.strip(b" \t")
            if lname not in _HOP:
                self.headers.append(line)
                if lname == b"accept":
                    self.accept = value
                continue
            if lname == b"host":
                if self.host is not None:
                    raise HttpError(400, "more than one Host header")
                self.host = value
            elif lname == b"cookie":
                self.cookies.append(value)
            elif lname == b"x-forwarded-for":
                self.forwarded_for.append(value)
            elif lname == b"content-length":
                lengths.update(v.strip() for v in value.split(b","))
            elif lname == b"transfer-encoding":
                if value.lower() != b"chunked" or chunked:
                    raise HttpError(501, "only Transfer-Encoding: chunked is supported")
                chunked = True
            elif lname == b"connection":
                connection += [t.strip().lower() for t in value.split(b",")]
            elif lname == b"upgrade":
                self.upgrade = value
        if version == b"HTTP/1.1" and self.host is None:
            raise HttpError(400, "an HTTP/1.1 request needs a Host header")
        if chunked and lengths:
            raise HttpError(400, "a request may not have both Content-Length and Transfer-Encoding")
        self.length = 0
        if lengths:
            if len(lengths) > 1 or not all(v.isdigit() for v in lengths):
                raise HttpError(400, "Content-Length must be one decimal number")
            self.length = int(lengths.pop())
        self.body = "chunked" if chunked else ("length" if self.length else "")
        self.connection = connection
        if connection:
            # Headers named in Connection are hop-by-hop too.
            named = {t for t in connection if t not in (b"close", b"keep-alive", b"upgrade")}
            if named:
                self.headers = [h for h in self.headers if h.partition(b":")[0].lower() not in named]
        self.keep_alive = version == b"HTTP/1.1" and b"close" not in connection
        if self.upgrade is not None and b"upgrade" not in connection:
            self.upgrade = None


def routing_path(raw: str) -> str:
    """The decoded path with dot-segments removed and slashes merged, as nginx routes by."""
    if "%" not in raw and "/." not in raw and "//" not in raw:
        return raw
    decoded = unquote(raw, errors="strict") if "%" in raw else raw
    if "\x00" in decoded:
        raise HttpError(400, "the path holds a NUL byte")
    out: list[str] = []
    for segment in decoded.split("/")[1:]:
        if segment in ("", "."):
            continue
        if segment == "..":
            if not out:
                raise HttpError(400, "the path goes above the root with '..'")
            out.pop()
        else:
            out.append(segment)
    trailing = "/" if decoded.endswith(("/", "/.", "/..")) and out else ""
    return "/" + "/".join(out) + trailing


def strip_cookies(values: list[bytes], names: frozenset[bytes]) -> list[bytes]:
    kept_values = []
    for value in values:
        pairs = [p for p in value.split(b";") if p.strip()]
        kept = [p.strip() for p in pairs if p.split(b"=", 1)[0].strip() not in names]
        if kept:
            kept_values.append(b"; ".join(kept))
    return kept_values


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
        reader, writer = await asyncio.open_unix_connection(self.path, limit=CHUNK)
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


def _response(
    status: int, body: bytes, content_type: bytes, extra: list[bytes] = (), keep: bool = True, head_only: bool = False
) -> bytes:
    lines = [
        b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, "Error").encode()),
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(body),
        b"Cache-Control: no-store",
        *extra,
    ]
    if not keep:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if head_only else body)


class Front:
    def __init__(
        self,
        routes_file: str,
        metrics_file: str | None = None,
        *,
        proto: str = "http",
        head_timeout: float = 10.0,
        keepalive_timeout: float = 75.0,
        poll_interval: float = 0.25,
        pool_size: int = 32,
    ) -> None:
        self.routes_file = routes_file
        self.metrics_file = metrics_file
        self.proto = proto.encode()
        self.head_timeout = head_timeout
        self.keepalive_timeout = keepalive_timeout
        self.poll_interval = poll_interval
        self.pool_size = pool_size
        self.routes = Routes()
        self.strip: frozenset[bytes] = frozenset()
        self.pools: dict[str, Pool] = {}
        self.metrics = Metrics()
        self._stamp: tuple[int, int, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []

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
                except TimeoutError:
                    if client.buf or first:
                        await self._error(client, HttpError(408, "the request head did not arrive in time"))
                    return
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
        finally:
            client.close()

    async def _read_request_head(self, client: Stream, first: bool) -> bytes | None:
        if not client.buf:
            # Idle between requests: wait for a first byte, then give the head its own deadline.
            async with asyncio.timeout(self.head_timeout if first else self.keepalive_timeout):
                if not await client.fill():
                    return None
        if b"\r\n\r\n" in client.buf:
            return await client.read_head()
        async with asyncio.timeout(self.head_timeout):
            return await client.read_head()

    async def _error(self, client: Stream, exc: HttpError) -> None:
        body = f"{exc.status} {_REASONS.get(exc.status, 'Error')}: {exc.message}\n".encode()
        with contextlib.suppress(Gone):
            await client.send(_response(exc.status, body, b"text/plain; charset=utf-8", keep=False))

    async def _page(self, client: Stream, request: Request, page: Page, keep: bool) -> bool:
        extra = [b"Retry-After: %d" % page.retry_after] if page.retry_after else []
        if _wants_json(request.accept.decode("latin-1")):
            body, ctype = page.as_json(), b"application/json"
        else:
            body, ctype = page.as_html(), b"text/html; charset=utf-8"
        keep = keep and request.keep_alive and not request.body
        await client.send(_response(page.status, body, ctype, extra, keep, request.method == b"HEAD"))
        return keep

    async def serve(self, client: Stream, request: Request, ip: bytes) -> bool:
        """Answer one request; True when the client connection can carry another."""
        started = time.monotonic()
        raw_path, _, query = request.target.decode("latin-1").partition("?")
        try:
            path = routing_path(raw_path)
        except (HttpError, UnicodeDecodeError) as exc:
            await self._error(client, exc if isinstance(exc, HttpError) else HttpError(400, "the path is not UTF-8"))
            return False
        route = self.routes.match(path)
        if route is None:
            return await self._page(client, request, not_found_page(), True)
        for static in route.static:
            if path.startswith(static.url + "/"):
                return await self.serve_static(client, request, static.dir, path[len(static.url) + 1 :])
        if path == route.path and route.path != "/":
            location = route.path + "/" + ("?" + query if query else "")
            keep = request.keep_alive and not request.body
            await client.send(_response(301, b"", b"text/plain", [b"Location: " + location.encode("latin-1")], keep))
            return keep
        if route.state != "running":
            keep = await self._page(client, request, unavailable_page(route), True)
            self.metrics.record(route.path, 503, time.monotonic() - started)
            return keep
        return await self.proxy(client, request, route, ip, started)

    async def serve_static(self, client: Stream, request: Request, directory: str, rel: str) -> bool:
        if request.method not in (b"GET", b"HEAD"):
            await client.send(
                _response(405, b"static files answer GET and HEAD only\n", b"text/plain", [b"Allow: GET, HEAD"], False)
            )
            return False
        root = os.path.realpath(directory)
        real = os.path.realpath(os.path.join(root, rel))
        # realpath resolves '..' and symlinks: whatever the path says, the file must be under root.
        fh = None
        if real.startswith(root + os.sep) and os.path.isfile(real):
            with contextlib.suppress(OSError):
                fh = open(real, "rb")  # closed by the with below, after streaming
        if fh is None:
            keep = request.keep_alive and not request.body
            await client.send(_response(404, b"404 Not Found: no such static file\n", b"text/plain", keep=keep))
            return keep
        with fh:
            st = os.fstat(fh.fileno())
            ctype = mimetypes.guess_type(real)[0] or "application/octet-stream"
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
                try:
                    await asyncio.get_running_loop().sendfile(client.writer.transport, fh)
                except (ConnectionError, OSError):
                    raise Gone("the client went away during a static file")
        return keep

    def _upstream_head(self, request: Request, route: Route, ip: bytes, websocket: bool) -> bytes:
        lines = [request.method + b" " + request.target + b" HTTP/1.1"]
        lines.append(b"Host: " + (request.host if request.host is not None else b"localhost"))
        lines += request.headers
        cookies = strip_cookies(request.cookies, self.strip) if self.strip else request.cookies
        if cookies:
            lines.append(b"Cookie: " + b"; ".join(cookies))
        lines.append(b"X-Forwarded-For: " + b", ".join([*request.forwarded_for, ip]))
        lines.append(b"X-Forwarded-Proto: " + self.proto)
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
        websocket = route.protocol == "asgi" and request.upgrade is not None
        head = self._upstream_head(request, route, ip, websocket)
        pool = self.pool(route)
        # A reused connection may have been closed by the app just now; a request without a body
        # is then retried once on a fresh one. A request with a body is never replayed.
        for attempt in range(2):
            try:
                conn, reused = await pool.acquire()
            except (OSError, ConnectionError) as exc:
                reason = "the socket does not exist" if isinstance(exc, FileNotFoundError) else str(exc)
                self.metrics.record(route.path, 502, time.monotonic() - started)
                return await self._page(client, request, bad_gateway_page(route, reason), True)
            body_task = None
            try:
                conn.writer.write(head)
                if request.body == "length" and len(client.buf) >= request.length:
                    conn.writer.write(bytes(client.buf[: request.length]))
                    del client.buf[: request.length]
                elif request.body:
                    body_task = asyncio.create_task(self._send_body(client, conn, request))
                response_head = await self._response_head(conn, client)
            except (Gone, HttpError) as exc:
                conn.close()
                if body_task is not None:
                    body_task.cancel()
                    with contextlib.suppress(BaseException):
                        await body_task
                if reused and attempt == 0 and not request.body:
                    continue
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
                raise Gone("the application closed the connection before answering")
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
            if lname in _RESPONSE_DROP:
                if lname == b"connection" and b"close" in value.lower():
                    upstream_close = True
                continue
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
            keep = False  # the app answered before reading the whole request body
        if not keep:
            out.append(b"Connection: close")
        await client.send(b"\r\n".join(out) + b"\r\n\r\n")
        reusable = not upstream_close and not until_eof and not websocket
        try:
            if no_body:
                pass
            elif chunked:
                await copy_chunked(conn, client, dechunk=request.version == b"HTTP/1.0")
            elif length is not None:
                await copy_length(conn, client, length)
            else:
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
