"""The shared layer on its own, through a kind made for the tests (processes/tests/echo/): the
pages every kind gets from processes/definition_views.py, the services, the start pipeline, the
supervision, the runs and the Activity, with a real worker, a real keeper and a real server; no
gateway and no web application involved."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from django.test import Client

from conftest import wait_until
from portal import paths
from portal.models import AuditEntry
from portal.process import keeper
from processes.models import Activity, Run
from processes.tests.echo.models import Echo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"{line}\n".encode())
        return s.makefile().readline().strip()


def form(**values: object) -> dict[str, object]:
    return {"name": "echo1", "port": free_port(), "prefix": "> ", "restart_policy": "on-failure",
            "init_timeout": 5, "stop_timeout": 2, **values}


@pytest.fixture
def echo_processes(celery_worker, transactional_db):  # type: ignore[no-untyped-def]
    yield celery_worker
    root = paths.RUN_DIR / "echoes"
    for run_dir in root.iterdir() if root.exists() else []:
        if keeper.keeper_alive(run_dir):
            keeper.request_stop(run_dir, timeout=15, trigger="test")


@pytest.mark.django_db
def test_its_pages_come_from_the_shared_layer_alone(role_client):
    admin = role_client("administrator")
    response = admin.get("/echoes/")
    assert response.status_code == 200
    assert b"No echo servers yet" in response.content and b"Create your first echo server" in response.content

    response = admin.post("/echoes/new/", form(prefix="hi\nthere"))
    assert response.status_code == 200
    assert "A prefix is one line: remove the line break." in response.content.decode()
    assert "correct the field marked below" in response.content.decode()

    response = admin.post("/echoes/new/", form(token_value="s3cr3t-token"), follow=True)
    echo = Echo.objects.get(name="echo1")
    assert response.redirect_chain[-1][0] == "/echoes/echo1/"
    page = response.content.decode()
    assert "Echo server echo1 was created." in page
    assert "Echo server on 127.0.0.1:" in page  # the adapter's describe()
    assert "ECHO_TOKEN=" in page and "s3cr3t-token" not in page  # a secret by its name only

    rows = admin.get("/echoes/?q=echo", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="echo-table"' in rows and f"<td class=\"wide\"><code class=\"path\">{echo.port}</code></td>" in rows
    assert admin.get("/echoes/?q=nothing-like-it").content.decode().count("No echo server matches") == 1
    assert 'id="echo-rows"' in admin.get("/echoes/?part=rows", HTTP_HX_REQUEST="true").content.decode()

    feedback = admin.post("/echoes/validate/", {"prefix": "# ", "pk": echo.pk}, HTTP_HX_REQUEST="true",
                          HTTP_HX_TRIGGER_NAME="prefix").content.decode()
    assert "Its answers will read as comments to a shell." in feedback

    response = admin.post("/echoes/echo1/edit/", form(port=echo.port, prefix="<<"), follow=True)
    assert "Echo server echo1 was saved." in response.content.decode()
    echo.refresh_from_db()
    assert echo.prefix == "<<"
    history = list(AuditEntry.objects.filter(object_id=str(echo.pk)).values_list("action", flat=True))
    assert history.count("created") == 1 and history.count("changed") == 1
    assert "s3cr3t-token" not in str(list(AuditEntry.objects.values_list("changes", flat=True)))

    assert admin.get("/echoes/echo1/delete/").status_code == 200
    response = admin.post("/echoes/echo1/delete/", follow=True)
    assert "Echo server echo1 was deleted." in response.content.decode()
    assert not Echo.objects.exists()
    assert admin.get("/echoes/echo1/").status_code == 404


@pytest.mark.django_db
def test_the_roles_hold_on_every_page(role_client, make_user):
    echo = Echo.objects.create(name="echo1", port=free_port())
    viewer = role_client("viewer")
    assert viewer.get("/echoes/").status_code == 200
    assert viewer.get(f"/echoes/{echo.name}/").status_code == 200
    for url in ("/echoes/new/", f"/echoes/{echo.name}/edit/", f"/echoes/{echo.name}/delete/"):
        response = viewer.get(url)
        assert response.status_code == 403, url
        assert b"Only an Administrator may" in response.content
    assert viewer.post(f"/echoes/{echo.name}/start/").status_code == 403
    nobody = Client()
    nobody.force_login(make_user("no-role", None))
    assert nobody.get("/echoes/").status_code == 403
    assert nobody.get(f"/echoes/{echo.name}/").status_code == 403


@pytest.mark.worker
def test_start_answer_restart_after_a_kill_and_stop(echo_processes, operator, role_client):
    port = free_port()
    echo = Echo.objects.create(name="echo1", port=port, prefix="> ", token={"ECHO_TOKEN": "s3cr3t"})
    client = role_client("operator")
    assert client.post("/echoes/echo1/start/", HTTP_HX_REQUEST="true").status_code == 200

    def running() -> bool:
        echo.refresh_from_db()
        return echo.state == "running" and not echo.in_transition

    wait_until(running, timeout=20, message=f"echo1 did not start: {echo.last_error}")
    assert ask(port, "hello") == "> hello 6"  # its secret reached it, by its environment
    live = client.get("/echoes/echo1/live/").content.decode()
    assert f"PID {echo.pid}" in live or f"<dd>{echo.pid}</dd>" in live
    assert "s3cr3t" not in Run.objects.of(echo).get().command

    # Killed behind the portal's back: the keeper restarts it (on-failure) and the Activity says so.
    first = echo.pid
    import os
    import signal

    os.kill(first, signal.SIGKILL)
    wait_until(lambda: ask_or_none(port) == "> again 6" and Echo.objects.get(pk=echo.pk).pid not in (None, first),
               timeout=20, message="echo1 was not restarted after kill -9")

    assert client.post("/echoes/echo1/stop/", HTTP_HX_REQUEST="true").status_code == 200
    wait_until(lambda: Echo.objects.get(pk=echo.pk).state == "stopped", timeout=20)
    with pytest.raises(OSError):
        ask(port, "anyone?")
    trail = [s for s in Activity.objects.of(echo).order_by("id").values_list("to_state", flat=True) if s]
    assert trail[:2] == ["starting", "running"] and trail[-2:] == ["stopping", "stopped"]
    assert "s3cr3t" not in str(list(Activity.objects.of(echo).values_list("message", flat=True)))
    page = client.get("/echoes/echo1/activity/").content.decode()
    assert "echo1" in page and "stopped" in page


def ask_or_none(port: int) -> str | None:
    try:
        return ask(port, "again")
    except OSError:
        return None


def test_the_kind_needs_no_line_of_the_shared_layer():
    """What the echo kind is: a model, a form, an adapter and its URLs; nothing in processes/
    names it (the layering test checks that the shared layer names no kind at all)."""
    folder = Path(__file__).parent / "echo"
    assert sorted(p.name for p in folder.glob("*.py")) == [
        "__init__.py", "adapter.py", "apps.py", "forms.py", "models.py", "root_urls.py", "urls.py"]
    shared = Path(__file__).parents[1]
    assert not [p for p in shared.glob("*.py") if "echo" in p.read_text()]


@pytest.mark.django_db
def test_the_detail_page_shows_a_kinds_own_fields_as_they_are(role_client):
    """Without a _definition.html of its own, a kind's fields are shown by kind of value: an empty one
    as "none", a number or a text as typed, a secret by its names only."""
    Echo.objects.create(name="bare", port=free_port(), prefix="", token={})
    Echo.objects.create(name="full", port=12345, prefix="> ", token={"ECHO_TOKEN": "never-shown"})
    client = role_client("viewer")
    bare = client.get("/echoes/bare/").content.decode()
    assert '<dt>Prefix</dt><dd><span class="muted">none</span></dd>' in bare
    assert '<dt>Secret token</dt><dd><span class="muted">none</span></dd>' in bare
    full = client.get("/echoes/full/").content.decode()
    assert '<dt>Port</dt><dd><code class="path">12345</code></dd>' in full
    assert "ECHO_TOKEN=" in full and "never-shown" not in full
