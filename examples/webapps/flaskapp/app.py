"""The Flask example: posts and comments as a JSON API on SQLite, and a gateway ping.

Served as a WSGI application: module ``app``, callable ``app``. Its mount (``/flask``) comes from
``SCRIPT_NAME`` in the server's environment (gunicorn strips it from the path), so ``url_for``
builds every link under the mount.

Environment: ``APP_DB_PATH`` (default ``flaskapp.sqlite3`` beside this file, or in HOME when that
folder is not writable), ``GATEWAY_HOST``,
``GATEWAY_PORT``, ``GATEWAY_PASSPHRASE`` (for ``/interop``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, render_template_string, request, url_for
from werkzeug.exceptions import HTTPException

app = Flask(__name__)
app.json.sort_keys = False

HERE = Path(__file__).resolve().parent
# Beside this file; where this folder is not the application's to write (the portal runs it as a
# user of its own, and the folder is root's), in its home.
DB_PATH = Path(os.environ.get("APP_DB_PATH")
               or (HERE if os.access(HERE, os.W_OK) else Path.home()) / "flaskapp.sqlite3")
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
TITLE_MAX = 200


class BadInput(Exception):
    """A request body that cannot be used; the message says what to send instead."""


def db() -> sqlite3.Connection:
    """This request's connection; the file and its tables are created on first use."""
    if "db" not in g:
        DB_PATH.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(DB_PATH, timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(SCHEMA)
        g.db = conn
    return g.db


@app.teardown_appcontext
def close_db(_exc: BaseException | None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


# Errors: always JSON with a message that says what to do -------------------------------


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


@app.errorhandler(BadInput)
def bad_input(exc: BadInput) -> tuple[Response, int]:
    return error(400, str(exc))


@app.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Response, int]:
    if exc.code == 404:
        path = request.script_root + request.path
        return error(404, f"nothing at {path}; the index {url_for('index')} lists the endpoints")
    if exc.code == 405:
        allowed = ", ".join(sorted(exc.valid_methods or []))
        return error(405, f"{request.method} is not allowed on {request.script_root}{request.path}; use {allowed}")
    return error(exc.code or 500, exc.description or exc.name)


def body() -> dict[str, Any]:
    raw = request.get_data(cache=False)
    try:
        data = json.loads(raw or b"null")
    except ValueError as exc:
        raise BadInput(f"the body is not valid JSON ({exc}); send a JSON object") from None
    if not isinstance(data, dict):
        raise BadInput('the body must be a JSON object, such as {"title": "Hello", "content": "First post"}')
    return data


def text_field(data: dict[str, Any], name: str, max_length: int | None = None) -> str:
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{name} must be a non-empty string")
    if max_length and len(value) > max_length:
        raise BadInput(f"{name} is {len(value)} characters long; the most is {max_length}")
    return value


def post_id_field(data: dict[str, Any]) -> int:
    value = data["post_id"]
    if type(value) is not int:
        raise BadInput("post_id must be the integer id of an existing post")
    if db().execute("SELECT 1 FROM post WHERE id = ?", (value,)).fetchone() is None:
        raise BadInput(f"there is no post {value}; create it first (POST {url_for('posts')}) or use an existing id")
    return value


def fields(data: dict[str, Any], allowed: tuple[str, ...], partial: bool) -> dict[str, Any]:
    """The allowed fields of ``data``, all required unless ``partial`` (PATCH), at least one."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        hint = " (ids are given by the server)" if "id" in unknown else ""
        raise BadInput(f"unknown field(s) {', '.join(unknown)}{hint}; allowed: {', '.join(allowed)}")
    missing = [name for name in allowed if name not in data]
    if missing and not partial:
        raise BadInput(f"missing field(s) {', '.join(missing)}; {request.method} needs all of {', '.join(allowed)}")
    if partial and not data:
        raise BadInput(f"nothing to change; send one or more of {', '.join(allowed)}")
    checks = {
        "title": lambda: text_field(data, "title", TITLE_MAX),
        "content": lambda: text_field(data, "content"),
        "post_id": lambda: post_id_field(data),
    }
    return {name: checks[name]() for name in allowed if name in data}


# Posts and comments -------------------------------------------------------------------

RESOURCES = {"post": ("title", "content"), "comment": ("post_id", "content")}


def as_dict(row: sqlite3.Row) -> dict[str, Any]:
    return dict(zip(row.keys(), row, strict=True))


def fetch(table: str, item_id: int) -> sqlite3.Row | None:
    return db().execute(f"SELECT * FROM {table} WHERE id = ?", (item_id,)).fetchone()


def not_found(table: str, item_id: int) -> tuple[Response, int]:
    return error(404, f"there is no {table} {item_id}; GET {url_for(table + 's')} lists them")


def create(table: str) -> tuple[Response, int, dict[str, str]]:
    values = fields(body(), RESOURCES[table], partial=False)
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    with db():
        cur = db().execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values()))
    item_id = cur.lastrowid
    location = url_for(table, item_id=item_id)
    return jsonify(as_dict(fetch(table, item_id))), 201, {"Location": location}


def one(table: str, item_id: int) -> Any:
    row = fetch(table, item_id)
    if row is None:
        return not_found(table, item_id)
    if request.method == "GET":
        return jsonify(as_dict(row))
    if request.method == "DELETE":
        with db():
            db().execute(f"DELETE FROM {table} WHERE id = ?", (item_id,))
        return "", 204
    values = fields(body(), RESOURCES[table], partial=request.method == "PATCH")
    assignments = ", ".join(f"{name} = ?" for name in values)
    with db():
        db().execute(f"UPDATE {table} SET {assignments} WHERE id = ?", (*values.values(), item_id))
    return jsonify(as_dict(fetch(table, item_id)))


@app.route("/posts", methods=["GET", "POST"])
def posts() -> Any:
    if request.method == "POST":
        return create("post")
    return jsonify([as_dict(r) for r in db().execute("SELECT * FROM post ORDER BY id")])


@app.route("/posts/<int:item_id>", methods=["GET", "PUT", "PATCH", "DELETE"])
def post(item_id: int) -> Any:
    return one("post", item_id)


@app.route("/comments", methods=["GET", "POST"])
def comments() -> Any:
    if request.method == "POST":
        return create("comment")
    post_filter = request.args.get("post_id")
    if post_filter is None:
        rows = db().execute("SELECT * FROM comment ORDER BY id")
    elif post_filter.isdigit():
        rows = db().execute("SELECT * FROM comment WHERE post_id = ? ORDER BY id", (int(post_filter),))
    else:
        raise BadInput(f"post_id={post_filter!r} is not a post id; use ?post_id=1")
    return jsonify([as_dict(r) for r in rows])


@app.route("/comments/<int:item_id>", methods=["GET", "PUT", "PATCH", "DELETE"])
def comment(item_id: int) -> Any:
    return one("comment", item_id)


# The gateway ping ---------------------------------------------------------------------


@app.route("/interop")
def interop() -> Any:
    """Ping the gateway named by GATEWAY_HOST/GATEWAY_PORT through the portal's client."""
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
    return jsonify(gateway=f"{host}:{port}", ping="pong" if pong else "no answer", python=version.get("python"),
                   pid=version.get("pid"), milliseconds=round((time.perf_counter() - started) * 1000, 2))


# The index page: every link comes from url_for, so the mount shows ----------------------

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flask example</title></head>
<body><h1>Flask example</h1>
<p>Mounted at <code>{{ request.script_root or "/" }}</code>. JSON endpoints:</p>
<ul>
{% for label, href in links %}<li><a href="{{ href }}">{{ label }}</a></li>
{% endfor %}</ul>
{% if no_post %}<p>No post yet: <code>POST {{ url_for("posts") }}</code> with
<code>{"title": "Hello", "content": "First post"}</code> creates one.</p>{% endif %}
</body></html>
"""


@app.route("/")
def index() -> str:
    # Links to a post only when there is one: a fresh database has none.
    first = db().execute("SELECT id FROM post ORDER BY id LIMIT 1").fetchone()
    links = [("Posts", url_for("posts"))]
    if first is not None:
        links.append((f"Post {first['id']}", url_for("post", item_id=first["id"])))
    links.append(("Comments", url_for("comments")))
    if first is not None:
        links.append((f"Comments on post {first['id']}", url_for("comments", post_id=first["id"])))
    links.append(("Gateway ping", url_for("interop")))
    return render_template_string(INDEX, links=links, no_post=first is None)
