"""The FastAPI example: posts and comments as a JSON API on SQLite, and a gateway ping.

Served as an ASGI application, natively async: module ``app``, callable ``app``. Its mount
(``/fastapi``) is the ASGI ``root_path``, and the path the server passes stays whole
(``/fastapi/posts``), which is what Starlette routes on since 0.33. Where the server sets no
root_path, ``MountFromEnvironment`` takes it from ``SCRIPT_NAME``, so the app is right under either.

Environment: ``APP_DB_PATH`` (default ``fastapiapp.sqlite3`` beside this file, or in HOME when that
folder is not writable), ``SCRIPT_NAME``,
``GATEWAY_HOST``, ``GATEWAY_PORT``, ``GATEWAY_PASSPHRASE`` (for ``/interop``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

HERE = Path(__file__).resolve().parent
# Beside this file; where this folder is not the application's to write (the portal runs it as a
# user of its own, and the folder is root's), in its home.
DB_PATH = Path(os.environ.get("APP_DB_PATH")
               or (HERE if os.access(HERE, os.W_OK) else Path.home()) / "fastapiapp.sqlite3")
SCHEMA = """
CREATE TABLE IF NOT EXISTS post (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS comment (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    post_id INTEGER NOT NULL REFERENCES post(id) ON DELETE CASCADE,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS comment_post_id ON comment(post_id);
"""


class MountFromEnvironment:
    """Sets ``root_path`` from ``SCRIPT_NAME`` when the server gave none, keeping the path whole.

    uvicorn's ``--root-path`` prepends itself to every path: right behind a front that strips
    the prefix, doubled (``/fastapi/fastapi/posts``) behind one that passes the full path. So a
    front that passes the full path runs uvicorn without ``--root-path`` and sets SCRIPT_NAME, as
    for a WSGI app. Written by hand because FastAPI's own ``root_path`` argument is deprecated.
    """

    def __init__(self, app: ASGIApp, mount: str) -> None:
        self.app = app
        self.mount = mount.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.mount and scope["type"] in ("http", "websocket") and not scope.get("root_path"):
            scope = dict(scope, root_path=self.mount)
        await self.app(scope, receive, send)


app = FastAPI(title="FastAPI example", description="Posts and comments on SQLite, and a gateway ping.")
app.add_middleware(MountFromEnvironment, mount=os.environ.get("SCRIPT_NAME", ""))


def db() -> Iterator[sqlite3.Connection]:
    """This request's connection; the file and its tables are created on first use."""
    DB_PATH.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(DB_PATH, timeout=10, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.executescript(SCHEMA)
    try:
        yield conn
    finally:
        conn.close()


Db = Annotated[sqlite3.Connection, Depends(db)]


# Input models: strict types, unknown fields refused -------------------------------------


def non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


Title = Annotated[str, Field(max_length=200), AfterValidator(non_blank)]
Text = Annotated[str, AfterValidator(non_blank)]
STRICT = ConfigDict(extra="forbid", strict=True)


class PostIn(BaseModel):
    model_config = STRICT
    title: Title
    content: Text


class PostPatch(BaseModel):
    model_config = STRICT
    title: Title = None  # type: ignore[assignment]  (absent means unchanged; null is refused below)
    content: Text = None  # type: ignore[assignment]


class CommentIn(BaseModel):
    model_config = STRICT
    post_id: int
    content: Text


class CommentPatch(BaseModel):
    model_config = STRICT
    post_id: int = None  # type: ignore[assignment]
    content: Text = None  # type: ignore[assignment]


class Post(BaseModel):
    id: int
    title: str
    content: str


class Comment(BaseModel):
    id: int
    post_id: int
    content: str


# Errors: always JSON with a message that says what to do -------------------------------


class BadInput(Exception):
    pass


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@app.exception_handler(BadInput)
async def bad_input(request: Request, exc: BadInput) -> JSONResponse:
    return error(400, str(exc))


class Missing(Exception):
    def __init__(self, table: str, item_id: int) -> None:
        self.table, self.item_id = table, item_id


@app.exception_handler(Missing)
async def missing(request: Request, exc: Missing) -> JSONResponse:
    listing = request.url_for(f"list_{exc.table}s").path
    return error(404, f"there is no {exc.table} {exc.item_id}; GET {listing} lists them")


@app.exception_handler(RequestValidationError)
async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = exc.errors()
    if any(p["loc"][:1] == ("path",) for p in problems):
        index = request.url_for("index").path
        return error(404, f"nothing at {request.url.path}; the index {index} lists the endpoints")
    in_body = any(p["loc"][:1] == ("body",) for p in problems)
    if in_body and "json" not in request.headers.get("content-type", ""):
        return error(400, "send the body as a JSON object with the header Content-Type: application/json")
    messages = []
    for p in problems:
        where = ".".join(str(part) for part in p["loc"][1:]) or "body"
        if p["type"] == "extra_forbidden":
            hint = " (ids are given by the server)" if where == "id" else ""
            messages.append(f"unknown field {where}{hint}")
        elif p["type"] == "missing":
            messages.append(f"missing field {where}")
        elif p["type"] == "json_invalid":
            messages.append(f"the body is not valid JSON ({p['msg']}); send a JSON object")
        else:
            messages.append(f"{where}: {p['msg'].removeprefix('Value error, ')}")
    return error(400, "; ".join(messages))


@app.exception_handler(HTTPException)
async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"nothing at {request.url.path}; the index {request.url_for('index').path} lists the endpoints"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
    else:
        message = str(exc.detail)
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


# Posts and comments -------------------------------------------------------------------


def fetch(conn: sqlite3.Connection, table: str, item_id: int) -> dict[str, Any]:
    row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        raise Missing(table, item_id)
    return dict(zip(row.keys(), row, strict=True))


def changes(data: BaseModel, request: Request, conn: sqlite3.Connection) -> dict[str, Any]:
    values = data.model_dump(exclude_unset=True)
    if not values:
        raise BadInput(f"nothing to change; send one or more of {', '.join(type(data).model_fields)}")
    for name, value in values.items():
        if value is None:
            raise BadInput(f"{name} must not be null; leave it out to keep it")
    if "post_id" in values:
        post_exists(conn, values["post_id"], request)
    return values


def post_exists(conn: sqlite3.Connection, post_id: int, request: Request) -> None:
    if conn.execute("SELECT 1 FROM post WHERE id = ?", (post_id,)).fetchone() is None:
        raise BadInput(f"there is no post {post_id}; create it first (POST {request.url_for('list_posts').path}) "
                       "or use an existing id")


def insert(conn: sqlite3.Connection, table: str, values: dict[str, Any]) -> dict[str, Any]:
    names, marks = ", ".join(values), ", ".join("?" for _ in values)
    with conn:
        cur = conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))
    return fetch(conn, table, cur.lastrowid)


def update(conn: sqlite3.Connection, table: str, item_id: int, values: dict[str, Any]) -> dict[str, Any]:
    fetch(conn, table, item_id)
    assignments = ", ".join(f"{name} = ?" for name in values)
    with conn:
        conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", (*values.values(), item_id))
    return fetch(conn, table, item_id)


def delete(conn: sqlite3.Connection, table: str, item_id: int) -> Response:
    fetch(conn, table, item_id)
    with conn:
        conn.execute(f"DELETE FROM {table} WHERE id = ?", (item_id,))
    return Response(status_code=204)


@app.get("/posts", response_model=list[Post])
def list_posts(conn: Db) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT * FROM post ORDER BY id")]


@app.post("/posts", response_model=Post, status_code=201)
def create_post(data: PostIn, conn: Db, request: Request, response: Response) -> dict[str, Any]:
    created = insert(conn, "post", data.model_dump())
    response.headers["Location"] = request.url_for("get_post", item_id=created["id"]).path
    return created


@app.get("/posts/{item_id}", response_model=Post)
def get_post(item_id: int, conn: Db) -> dict[str, Any]:
    return fetch(conn, "post", item_id)


@app.put("/posts/{item_id}", response_model=Post)
def replace_post(item_id: int, data: PostIn, conn: Db) -> dict[str, Any]:
    return update(conn, "post", item_id, data.model_dump())


@app.patch("/posts/{item_id}", response_model=Post)
def patch_post(item_id: int, data: PostPatch, conn: Db, request: Request) -> dict[str, Any]:
    return update(conn, "post", item_id, changes(data, request, conn))


@app.delete("/posts/{item_id}", status_code=204)
def delete_post(item_id: int, conn: Db) -> Response:
    return delete(conn, "post", item_id)


@app.get("/comments", response_model=list[Comment])
def list_comments(conn: Db, post_id: int | None = None) -> list[dict[str, Any]]:
    if post_id is None:
        return [dict(r) for r in conn.execute("SELECT * FROM comment ORDER BY id")]
    return [dict(r) for r in conn.execute("SELECT * FROM comment WHERE post_id = ? ORDER BY id", (post_id,))]


@app.post("/comments", response_model=Comment, status_code=201)
def create_comment(data: CommentIn, conn: Db, request: Request, response: Response) -> dict[str, Any]:
    post_exists(conn, data.post_id, request)
    created = insert(conn, "comment", data.model_dump())
    response.headers["Location"] = request.url_for("get_comment", item_id=created["id"]).path
    return created


@app.get("/comments/{item_id}", response_model=Comment)
def get_comment(item_id: int, conn: Db) -> dict[str, Any]:
    return fetch(conn, "comment", item_id)


@app.put("/comments/{item_id}", response_model=Comment)
def replace_comment(item_id: int, data: CommentIn, conn: Db, request: Request) -> dict[str, Any]:
    post_exists(conn, data.post_id, request)
    return update(conn, "comment", item_id, data.model_dump())


@app.patch("/comments/{item_id}", response_model=Comment)
def patch_comment(item_id: int, data: CommentPatch, conn: Db, request: Request) -> dict[str, Any]:
    return update(conn, "comment", item_id, changes(data, request, conn))


@app.delete("/comments/{item_id}", status_code=204)
def delete_comment(item_id: int, conn: Db) -> Response:
    return delete(conn, "comment", item_id)


# The gateway ping ---------------------------------------------------------------------


@app.get("/interop")
def interop() -> JSONResponse:
    """Ping the gateway named by GATEWAY_HOST/GATEWAY_PORT through the portal's client.

    A plain ``def``: the client blocks, so FastAPI runs it in its thread pool.
    """
    host, port = os.environ.get("GATEWAY_HOST", ""), os.environ.get("GATEWAY_PORT", "")
    if not host or not port.isdigit():
        return error(503, "no gateway configured: set GATEWAY_HOST and GATEWAY_PORT (and GATEWAY_PASSPHRASE "
                          "when the gateway has one) in this application's environment")
    try:
        from gateways.client import GatewayError, connect
    except ImportError as exc:
        return error(503, f"gateways.client cannot be imported ({exc}); put the portal's directory on PYTHONPATH")
    started = time.perf_counter()
    try:
        with connect(host, int(port), passphrase=os.environ.get("GATEWAY_PASSPHRASE") or None, timeout=5) as gw:
            pong, version = gw.ping(), gw.version()
    except (GatewayError, OSError) as exc:
        return error(503, f"the gateway at {host}:{port} did not answer ({exc}); start it, or fix GATEWAY_HOST, "
                          "GATEWAY_PORT or GATEWAY_PASSPHRASE")
    return JSONResponse({
        "gateway": f"{host}:{port}", "ping": "pong" if pong else "no answer", "python": version.get("python"),
        "pid": version.get("pid"), "milliseconds": round((time.perf_counter() - started) * 1000, 2),
    })


# The index page: every link comes from url_for, so the mount shows ----------------------


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request, conn: Db) -> str:
    # Links to a post only when there is one: a fresh database has none.
    row = conn.execute("SELECT id FROM post ORDER BY id LIMIT 1").fetchone()
    first = row["id"] if row is not None else None
    posts = request.url_for("list_posts").path
    links = [("Posts", posts)]
    if first is not None:
        links.append((f"Post {first}", request.url_for("get_post", item_id=first).path))
    links.append(("Comments", request.url_for("list_comments").path))
    if first is not None:
        links.append((f"Comments on post {first}", request.url_for("list_comments").path + f"?post_id={first}"))
    links += [("Gateway ping", request.url_for("interop").path),
              ("API documentation", request.url_for("swagger_ui_html").path)]
    items = "\n".join(f'<li><a href="{escape(href)}">{escape(label)}</a></li>' for label, href in links)
    note = "" if first is not None else (f'\n<p>No post yet: <code>POST {escape(posts)}</code> with '
                                         '<code>{"title": "Hello", "content": "First post"}</code> creates one.</p>')
    mount = escape(request.scope.get("root_path") or "/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>FastAPI example</title></head>
<body><h1>FastAPI example</h1>
<p>Mounted at <code>{mount}</code>. JSON endpoints, and the API documentation:</p>
<ul>
{items}
</ul>{note}</body></html>
"""
