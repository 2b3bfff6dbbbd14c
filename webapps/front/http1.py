"""HTTP/1.1 on asyncio streams, by hand: request heads, body framing and byte relays for the front.

Why by hand (see server.py): a front must parse only what routing and framing need and copy the
rest as bytes; a general HTTP library builds objects for every header and body piece. What is
parsed is parsed defensively: every malformed input raises HttpError with the status to answer
(400, 431, 501, 505) and a message that says what was wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from urllib.parse import unquote

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
    | {
        # Other ways of saying "the original request was https / came from / was mounted at": a
        # client must not be able to tell an app any of them (the front says what is true above).
        b"forwarded",
        b"x-forwarded-ssl",
        b"x-forwarded-protocol",
        b"x-forwarded-scheme",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-scheme",
        b"x-url-scheme",
        b"x-real-ip",
        b"front-end-https",
    }
)
RESPONSE_DROP = frozenset({b"connection", b"keep-alive", b"proxy-connection"})
REASONS = {
    301: "Moved Permanently",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    504: "Gateway Timeout",
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
    """A connection with its own read buffer, so that bytes read past a head are never lost.

    ``seen`` is when bytes last moved on it (read, or written and drained): the front's sweeper
    ends an exchange on which nothing has moved for too long (a stalled upload or download).
    """

    __slots__ = ("buf", "reader", "seen", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.seen = time.monotonic()

    async def fill(self) -> bool:
        try:
            data = await self.reader.read(CHUNK)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            return False
        self.buf += data
        self.seen = time.monotonic()
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
        self.seen = time.monotonic()
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
        self.seen = time.monotonic()

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
        "forwarded_proto",
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
        self.forwarded_proto = b""
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
            elif lname == b"x-forwarded-proto":
                self.forwarded_proto = value  # believed only from a trusted proxy (forwarding.py)
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


def response_bytes(
    status: int, body: bytes, content_type: bytes, extra: list[bytes] = (), keep: bool = True, head_only: bool = False
) -> bytes:
    lines = [
        b"HTTP/1.1 %d %s" % (status, REASONS.get(status, "Error").encode()),
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(body),
        b"Cache-Control: no-store",
        *extra,
    ]
    if not keep:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if head_only else body)
