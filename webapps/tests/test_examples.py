"""The example applications of examples/webapps/ (Flask, Django, FastAPI), served under their mounts.

Each runs in its own virtualenv under its real engine (gunicorn or uvicorn) on a unix socket and
is driven with real HTTP carrying the full path, as the portal's front sends it. The first run
builds the three virtualenvs (see example_servers.py); later runs reuse them.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gateways.tests.conftest import TEST_PASSPHRASE, TEST_VERIFIER, GatewayProcess, start_gateway_server
from webapps.tests.example_servers import EXAMPLE_APPS, HOST, ExampleServer, http_request, start_example


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A real External Python Server with a passphrase, for /interop."""
    server = start_gateway_server(tmp_path_factory.mktemp("examples-gateway"), env_passphrase=TEST_VERIFIER)
    yield server
    server.stop()


def gateway_env(gateway: GatewayProcess, passphrase: str = TEST_PASSPHRASE) -> dict[str, str]:
    return {"GATEWAY_HOST": gateway.host, "GATEWAY_PORT": str(gateway.port), "GATEWAY_PASSPHRASE": passphrase}


@pytest.fixture(scope="session")
def running(gateway: GatewayProcess,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], ExampleServer]]:
    """One server per example, started when a test first needs it, configured with the gateway."""
    servers: dict[str, ExampleServer] = {}

    def get(name: str) -> ExampleServer:
        if name not in servers:
            servers[name] = start_example(EXAMPLE_APPS[name], tmp_path_factory.mktemp(name), gateway_env(gateway))
        return servers[name]

    yield get
    for server in servers.values():
        server.stop()


@pytest.fixture(params=list(EXAMPLE_APPS))
def app(request: pytest.FixtureRequest, running: Callable[[str], ExampleServer]) -> ExampleServer:
    return running(request.param)


@contextmanager
def one_off(name: str, tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[ExampleServer]:
    """A server of its own, for a test that needs another environment."""
    server = start_example(EXAMPLE_APPS[name], tmp_path / name, env)
    try:
        yield server
    finally:
        server.stop()


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value and not value.startswith("#"):
                self.urls.append(value)


def links(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.urls


def assert_error(answer, status: int, *words: str) -> str:  # type: ignore[no-untyped-def]
    assert answer.status == status, (answer.status, answer.body[:500])
    message = answer.json()["error"]
    assert isinstance(message, str) and message
    for word in words:
        assert word in message, message
    return message


# CRUD ------------------------------------------------------------------------------------


def test_posts_go_through_their_whole_life(app: ExampleServer) -> None:
    mount = app.example.mount
    created = app.request("POST", "/posts", {"title": "Hello", "content": "First post"})
    assert created.status == 201, created.body
    post = created.json()
    assert post == {"id": post["id"], "title": "Hello", "content": "First post"}
    assert created.headers["Location"] == f"{mount}/posts/{post['id']}"
    assert app.db_path.exists(), "the database file is created on first use, folder included"

    assert post in app.request("GET", "/posts").json()
    assert app.request("GET", f"/posts/{post['id']}").json() == post

    replaced = app.request("PUT", f"/posts/{post['id']}", {"title": "Hi", "content": "Rewritten"})
    assert replaced.status == 200 and replaced.json() == {"id": post["id"], "title": "Hi", "content": "Rewritten"}
    patched = app.request("PATCH", f"/posts/{post['id']}", {"content": "Only the content"})
    assert patched.json() == {"id": post["id"], "title": "Hi", "content": "Only the content"}
    assert app.request("GET", f"/posts/{post['id']}").json()["content"] == "Only the content"

    assert app.request("DELETE", f"/posts/{post['id']}").status == 204
    assert_error(app.request("GET", f"/posts/{post['id']}"), 404, f"post {post['id']}", f"{mount}/posts")
    assert_error(app.request("DELETE", f"/posts/{post['id']}"), 404)
    assert post["id"] not in [p["id"] for p in app.request("GET", "/posts").json()]


def test_a_comment_needs_an_existing_post(app: ExampleServer) -> None:
    mount = app.example.mount
    refused = app.request("POST", "/comments", {"post_id": 999999, "content": "Orphan"})
    assert_error(refused, 400, "999999", f"{mount}/posts")
    assert all(c["content"] != "Orphan" for c in app.request("GET", "/comments").json())

    post = app.request("POST", "/posts", {"title": "Commented", "content": "x"}).json()
    other = app.request("POST", "/posts", {"title": "Other", "content": "y"}).json()
    created = app.request("POST", "/comments", {"post_id": post["id"], "content": "Nice"})
    assert created.status == 201, created.body
    comment = created.json()
    assert comment == {"id": comment["id"], "post_id": post["id"], "content": "Nice"}
    assert created.headers["Location"] == f"{mount}/comments/{comment['id']}"
    assert app.request("GET", f"/comments/{comment['id']}").json() == comment
    assert app.request("GET", f"/comments?post_id={post['id']}").json() == [comment]
    assert app.request("GET", f"/comments?post_id={other['id']}").json() == []

    assert_error(app.request("PATCH", f"/comments/{comment['id']}", {"post_id": 999999}), 400, "999999")
    moved = app.request("PUT", f"/comments/{comment['id']}", {"post_id": other["id"], "content": "Moved"})
    assert moved.json() == {"id": comment["id"], "post_id": other["id"], "content": "Moved"}

    # Deleting a post deletes its comments.
    assert app.request("DELETE", f"/posts/{other['id']}").status == 204
    assert_error(app.request("GET", f"/comments/{comment['id']}"), 404, f"comment {comment['id']}")


@pytest.mark.parametrize(
    ("method", "path", "body", "words"),
    [
        ("POST", "/posts", b"{not json", ["JSON"]),
        ("POST", "/posts", b'["a list"]', []),
        ("POST", "/posts", b'{"title": "No content"}', ["content"]),
        ("POST", "/posts", b'{"title": "", "content": "x"}', ["title"]),
        ("POST", "/posts", b'{"title": "   ", "content": "x"}', ["title"]),
        ("POST", "/posts", b'{"title": 5, "content": "x"}', ["title"]),
        ("POST", "/posts", b'{"title": "' + b"t" * 201 + b'", "content": "x"}', ["title"]),
        ("POST", "/posts", b'{"id": 7, "title": "t", "content": "x"}', ["id", "server"]),
        ("POST", "/posts", b'{"title": "t", "content": "x", "colour": "red"}', ["colour"]),
        ("POST", "/comments", b'{"post_id": "1", "content": "x"}', ["post_id"]),
        ("POST", "/comments", b'{"content": "x"}', ["post_id"]),
        ("PATCH", "/posts/{id}", b"{}", ["nothing to change"]),
        ("PUT", "/posts/{id}", b'{"title": "Only a title"}', ["content"]),
        ("GET", "/comments?post_id=abc", None, ["post_id"]),
    ],
)
def test_bad_input_gets_a_400_that_says_what_is_wrong(app: ExampleServer, method: str, path: str, body: bytes | None,
                                                       words: list[str]) -> None:
    post = app.request("POST", "/posts", {"title": "Untouched", "content": "Before"}).json()
    before = app.request("GET", "/posts").json()
    answer = app.request(method, path.format(id=post["id"]), raw=body)
    assert_error(answer, 400, *words)
    assert app.request("GET", "/posts").json() == before, "bad input changed nothing"


def test_unknown_paths_and_methods_answer_json(app: ExampleServer) -> None:
    mount = app.example.mount
    assert_error(app.request("GET", "/posts/not-a-number"), 404, f"{mount}/posts/not-a-number", f"{mount}/")
    assert_error(app.request("GET", "/no-such-page"), 404, f"{mount}/no-such-page")
    assert_error(app.request("DELETE", "/posts"), 405, "DELETE", "GET")


# The mount ---------------------------------------------------------------------------------


def test_the_index_links_stay_under_the_mount(app: ExampleServer) -> None:
    mount = app.example.mount
    index = app.request("GET", "/")
    assert index.status == 200 and "text/html" in index.headers["Content-Type"]
    urls = links(index.text)
    assert f"{mount}/posts" in urls and f"{mount}/comments" in urls and f"{mount}/interop" in urls, urls
    for url in urls:
        assert url.startswith(f"{mount}/"), url
        answer = http_request(app.socket, "GET", url, headers={"Host": HOST})
        assert answer.status in (200, 302, 404), (url, answer.status, answer.body[:300])


@pytest.mark.parametrize("name", list(EXAMPLE_APPS))
def test_the_index_links_only_to_posts_that_exist(name: str, tmp_path: Path, gateway: GatewayProcess) -> None:
    with one_off(name, tmp_path, gateway_env(gateway)) as server:
        mount = server.example.mount
        fresh = server.request("GET", "/")
        assert "Post 1" not in fresh.text and "post_id=" not in fresh.text, fresh.text
        assert f"No post yet: <code>POST {mount}/posts</code>" in fresh.text
        for url in links(fresh.text):
            answer = http_request(server.socket, "GET", url, headers={"Host": HOST})
            assert answer.status in (200, 302), (url, answer.status, answer.body[:300])  # 302: Django's admin login
        created = server.request("POST", "/posts", {"title": "Hello", "content": "First post"})
        assert created.status == 201, created.body
        post_id = created.json()["id"]
        index = server.request("GET", "/")
        assert f'href="{mount}/posts/{post_id}">Post {post_id}</a>' in index.text and "No post yet" not in index.text
        for url in links(index.text):
            answer = http_request(server.socket, "GET", url, headers={"Host": HOST})
            assert answer.status in (200, 302), (url, answer.status, answer.body[:300])


# /interop ----------------------------------------------------------------------------------


def test_interop_pings_the_running_gateway(app: ExampleServer, gateway: GatewayProcess) -> None:
    answer = app.request("GET", "/interop")
    assert answer.status == 200, answer.body
    pong = answer.json()
    assert pong["ping"] == "pong"
    assert pong["gateway"] == f"{gateway.host}:{gateway.port}"
    assert pong["pid"] == gateway.proc.pid
    assert TEST_PASSPHRASE not in answer.text


@pytest.mark.parametrize("name", list(EXAMPLE_APPS))
def test_interop_without_a_gateway_says_what_to_set(name: str, tmp_path: Path) -> None:
    with one_off(name, tmp_path) as server:
        assert_error(server.request("GET", "/interop"), 503, "GATEWAY_HOST", "GATEWAY_PORT")


def test_interop_with_a_wrong_passphrase_says_the_gateway_did_not_answer(gateway: GatewayProcess,
                                                                         tmp_path: Path) -> None:
    with one_off("flask", tmp_path, gateway_env(gateway, passphrase="not the passphrase")) as server:
        message = assert_error(server.request("GET", "/interop"), 503, f"{gateway.host}:{gateway.port}",
                               "GATEWAY_PASSPHRASE")
        assert "not the passphrase" not in message


def test_interop_without_the_portal_on_pythonpath_says_so(gateway: GatewayProcess, tmp_path: Path) -> None:
    for name in ("flask", "fastapi"):
        with one_off(name, tmp_path, {**gateway_env(gateway), "PYTHONPATH": ""}) as server:
            assert_error(server.request("GET", "/interop"), 503, "gateways.client", "PYTHONPATH")


# Framework specifics ------------------------------------------------------------------------


def test_django_admin_logs_in_and_links_under_the_mount(running: Callable[[str], ExampleServer]) -> None:
    app = running("django")
    subprocess.run(
        [str(app.python), "manage.py", "createsuperuser", "--noinput", "--username", "admin", "--email", "a@example.com"],
        cwd=app.example.directory, env={**app.env, "DJANGO_SUPERUSER_PASSWORD": "a long admin passphrase"},
        check=True, capture_output=True,
    )
    redirect = app.request("GET", "/admin")
    assert redirect.status == 301 and redirect.headers["Location"] == "/django/admin/"

    login = app.request("GET", "/admin/login/?next=/django/admin/")
    assert login.status == 200
    urls = links(login.text)
    assert "/django/static/admin/css/base.css" in urls, urls
    assert all(u.startswith("/django/") for u in urls), urls
    css = app.request("GET", "/static/admin/css/base.css")
    assert css.status == 200 and "text/css" in css.headers["Content-Type"]

    csrf_cookie = login.cookies()["csrftoken"]
    assert "Path=/django/" in csrf_cookie, csrf_cookie
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    form = f"csrfmiddlewaretoken={token}&username=admin&password=a+long+admin+passphrase&next=%2Fdjango%2Fadmin%2F"
    logged_in = app.request("POST", "/admin/login/?next=/django/admin/", raw=form.encode(), headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": csrf_cookie.split(";")[0],
        "Origin": f"http://{HOST}",
    })
    assert logged_in.status == 302, logged_in.body[:500]
    assert logged_in.headers["Location"] == "/django/admin/"
    session = logged_in.cookies()["sessionid"]
    assert "Path=/django/" in session and "HttpOnly" in session

    home = app.request("GET", "/admin/", headers={"Cookie": session.split(";")[0]})
    assert home.status == 200
    assert "/django/admin/blog/post/" in links(home.text)
    assert "/django/admin/logout/" in links(home.text)


def test_django_refuses_an_unknown_host_with_a_json_400(running: Callable[[str], ExampleServer]) -> None:
    answer = running("django").request("GET", "/posts", headers={"Host": "evil.example"})
    assert_error(answer, 400, "evil.example", "DJANGO_ALLOWED_HOSTS")


def test_fastapi_docs_load_the_openapi_under_the_mount(running: Callable[[str], ExampleServer]) -> None:
    app = running("fastapi")
    docs = app.request("GET", "/docs")
    assert docs.status == 200
    assert "'/fastapi/openapi.json'" in docs.text
    schema = app.request("GET", "/openapi.json").json()
    assert schema["servers"] == [{"url": "/fastapi"}]
    assert "/posts" in schema["paths"] and "/comments/{item_id}" in schema["paths"]


def test_uvicorn_root_path_fits_a_front_that_strips_the_prefix_only(tmp_path: Path) -> None:
    """uvicorn 0.54 prepends --root-path to the path it receives: a full path comes out doubled."""
    server = start_example(EXAMPLE_APPS["fastapi"], tmp_path / "rp", uvicorn_root_path="/fastapi")
    try:
        assert http_request(server.socket, "GET", "/fastapi/posts").status == 404
        stripped = http_request(server.socket, "GET", "/")
        assert stripped.status == 200 and "/fastapi/posts" in links(stripped.text)
    finally:
        server.stop()
