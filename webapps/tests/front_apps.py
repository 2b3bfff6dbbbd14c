"""Small WSGI and ASGI applications the front's tests and benchmark serve on unix sockets.

Every answer describes the request it received (path, headers, cookies), so that a test can see
exactly what the front passed on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

MB = 1024 * 1024
PIECE = 64 * 1024


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    return {k: v.value for k, v in jar.items()}


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ.get("RAW_URI") or environ["PATH_INFO"]
    last = environ["PATH_INFO"].rsplit("/", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if last == "hello":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return [b"Hello, World!"]
    if last == "bighead":  # a 10 KB response head (large cookies or policies do this)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2"), ("X-Big", "b" * 10000)])
        return [b"ok"]
    if last == "setcookies":  # the portal's cookie names among the application's own
        cookies = [
            "portal_sessionid=APP-CHOSEN-SESSION; Path=/",
            "sessionid=app-session; Path=/; HttpOnly",
            " portal_csrftoken =APP-CHOSEN-CSRF",
            "csrftoken=app-csrf; Path=/",
            "theme=dark",
        ]
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2"),
                                  *(("Set-Cookie", c) for c in cookies)])
        return [b"ok"]
    if last == "hang":
        time.sleep(20)  # an app that does not answer for longer than the fronts' idle timeout
    if last == "download":
        size = int(query.get("mb", ["1"])[0]) * MB
        headers = [("Content-Type", "application/octet-stream")]
        if "chunked" not in query:
            headers.append(("Content-Length", str(size)))

        def pieces() -> Iterator[bytes]:
            block = bytes(range(256)) * (PIECE // 256)
            for _ in range(size // PIECE):
                yield block

        start_response("200 OK", headers)
        return pieces()
    if last == "upload":
        digest = hashlib.sha256()
        received = 0
        stream = environ["wsgi.input"]
        while True:
            data = stream.read(PIECE)
            if not data:
                break
            digest.update(data)
            received += len(data)
        body = json.dumps({"received": received, "sha256": digest.hexdigest()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    info = {
        "path": path,
        "path_info": environ["PATH_INFO"],
        "script_name": environ.get("SCRIPT_NAME", ""),
        "query": environ.get("QUERY_STRING", ""),
        "headers": headers,
        "cookies": _cookies(environ.get("HTTP_COOKIE", "")),
        "app": "wsgi",
    }
    body = json.dumps(info).encode()
    status = "500 Internal Server Error" if "fail" in query else "200 OK"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": "echo: " + message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    path = scope["path"]
    if path.endswith("/sleep"):
        # ?started=FILE: the file is made when the request has reached the app, for a test to wait on.
        for started in parse_qs(scope.get("query_string", b"").decode()).get("started", []):
            open(started, "w").close()
        await asyncio.sleep(1)
    while (await receive()).get("more_body"):
        pass
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    body = json.dumps(
        {"path": path, "raw_path": (scope.get("raw_path") or b"").decode(), "headers": headers, "app": "asgi"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
