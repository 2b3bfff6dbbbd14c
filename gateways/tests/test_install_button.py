"""The "install msgpack" button: the page only records the request and sends a task to the
gateway's host; the worker there runs the install command that the start check named, and its
outcome (success, or the last lines of the failure) goes to the row, the detail page and the
Activity. Real worker, real interpreters, real pip.

The install is offline: a worker of its own gets PIP_NO_INDEX and PIP_FIND_LINKS pointing at
a wheel of msgpack made from the files of the portal's own virtualenv, so the command stays
exactly the one the check names (``PY -m pip install msgpack``).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import start_worker, stop_worker, wait_until
from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port, start_and_wait
from portal import paths
from processes import control
from processes import tasks as process_tasks
from processes.models import Activity

pytestmark = [pytest.mark.worker]

HOST = "pipbox"


def msgpack_wheel(folder: Path) -> Path:
    """A wheel of the msgpack installed here, from its installed files and a fresh RECORD."""
    dist = importlib.metadata.distribution("msgpack")
    info = next(f for f in dist.files or [] if f.name == "WHEEL")
    tag = next(line.split(": ", 1)[1] for line in info.read_text().splitlines() if line.startswith("Tag: "))
    dist_info = info.parent.as_posix()
    wheel = folder / f"msgpack-{dist.version}-{tag}.whl"
    folder.mkdir(parents=True, exist_ok=True)
    record = []
    with zipfile.ZipFile(wheel, "w") as z:
        for f in dist.files or []:
            if "__pycache__" in f.parts or f.name in {"RECORD", "INSTALLER", "REQUESTED"}:
                continue
            data = Path(f.locate()).read_bytes()
            z.writestr(f.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{f.as_posix()},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        z.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("wheels")
    msgpack_wheel(folder)
    return folder


@pytest.fixture
def pip_worker(gateway_processes, wheels, settings):  # type: ignore[no-untyped-def]
    """A worker for host "pipbox" whose pip finds packages only in ``wheels``; gateways defined
    in the test belong to it (loopback means the portal's own host)."""
    from portal.celery import app

    process = start_worker(HOST, paths.VAR_DIR / f"worker-{HOST}.log",
                           extra_env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)})
    node = f"test@{HOST}"
    wait_until(lambda: node in (app.control.inspect(destination=[node], timeout=0.5).ping() or {}),
               timeout=60, interval=0.2, message=f"worker {node} did not answer")
    settings.PORTAL_HOST_NAME = HOST
    yield node
    stop_worker(process)


def refused_for_msgpack(python: str, operator) -> Gateway:  # type: ignore[no-untyped-def]
    gateway = make_gateway(port=free_port(), python_executable=python)
    control.request(gateway, "start", operator)
    wait_until(lambda: Gateway.objects.get(pk=gateway.pk).last_error, timeout=30)
    gateway.refresh_from_db()
    assert gateway.startup["fix_argv"] == [python, "-m", "pip", "install", "msgpack"], gateway.startup
    return gateway


def press_install(client, gateway: Gateway) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = client.post(f"/gateways/{gateway.name}/install/")
    took = time.monotonic() - started
    assert response.status_code == 302, response.content
    return took


def install_outcome(gateway: Gateway) -> dict:
    def finished() -> bool:
        gateway.refresh_from_db()
        return (gateway.startup.get("install") or {}).get("state") in {"done", "failed"}

    wait_until(finished, timeout=180, interval=0.1, message="the install did not finish")
    return gateway.startup["install"]


def test_the_button_installs_msgpack_in_a_task_and_the_row_and_activity_show_it(
        pip_worker, operator, administrator, admin_client_, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    gateway = refused_for_msgpack(python, operator)

    took = press_install(admin_client_, gateway)
    assert took < 1.0, f"the request took {took:.2f} s: the install ran inside it"
    gateway.refresh_from_db()
    assert gateway.startup["install"]["state"] in {"installing", "done"}
    requested = Activity.objects.of(gateway).get(message__startswith="Install of msgpack requested")
    assert requested.trigger == "ada" and requested.message.endswith(f"{python} -m pip install msgpack")

    outcome = install_outcome(gateway)
    assert outcome["state"] == "done", outcome
    assert outcome["message"] == (f"{python} -m pip install msgpack succeeded: {python} now imports msgpack. "
                                  f"Start {gateway.name} again.")
    done = Activity.objects.of(gateway).get(message=outcome["message"])
    assert done.level == "info" and done.trigger == "ada" and done.at >= requested.at
    # The refusal and its button are gone from the row; the interpreter really has msgpack.
    assert gateway.last_error == "" and "fix_argv" not in gateway.startup
    assert subprocess.run([python, "-c", "import msgpack"], timeout=30).returncode == 0
    status = admin_client_.get(f"/gateways/{gateway.name}/install/")
    assert status.status_code == 286 and "succeeded" in status.content.decode()
    page = admin_client_.get(f"/gateways/{gateway.name}/").content.decode()
    assert "now imports msgpack" in page and "Run: " not in page
    # And it starts now, with that interpreter.
    gateway = start_and_wait(gateway, operator, timeout=30)
    assert gateway.state == "running", gateway.last_error


def test_a_failing_install_shows_the_last_lines_of_its_output(pip_worker, operator, admin_client_, tmp_path):
    # An interpreter without pip: the install command fails, as it would on a bare system Python.
    venv = tmp_path / "no-pip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = str(venv / "bin" / "python")
    gateway = refused_for_msgpack(python, operator)
    refusal = gateway.last_error

    assert press_install(admin_client_, gateway) < 1.0
    outcome = install_outcome(gateway)
    assert outcome["state"] == "failed", outcome
    assert outcome["message"].startswith(f"{python} -m pip install msgpack failed (exit 1): ")
    assert "No module named pip" in outcome["message"]
    failed = Activity.objects.of(gateway).get(level="error", message=outcome["message"])
    assert failed.trigger == "ada"
    # The refusal stays, and so does the button to try again.
    assert gateway.last_error == refusal and gateway.startup["fix_argv"]
    page = admin_client_.get(f"/gateways/{gateway.name}/").content.decode()
    assert "No module named pip" in page and "Run: " in page


@pytest.mark.django_db
def test_the_page_polls_while_installing_and_stops_when_done(admin_client_, viewer, client):
    gateway = make_gateway()
    process_tasks.set_install("gateway", gateway.pk,
                              {"state": "installing", "command": "py -m pip install msgpack", "at": "now"})
    client.force_login(viewer)
    polling = client.get(f"/gateways/{gateway.name}/install/")
    html = polling.content.decode()
    assert polling.status_code == 200 and "Installing…" in html and 'hx-trigger="every 500ms"' in html
    page = admin_client_.get(f"/gateways/{gateway.name}/").content.decode()
    assert "Installing…" in page and "Run: " not in page
    # A second press while it runs is refused with a word, not sent again.
    response = admin_client_.post(f"/gateways/{gateway.name}/install/", follow=True)
    assert "An install for PyGate is already running" in response.content.decode()
    process_tasks.set_install("gateway", gateway.pk,
                              {"state": "failed", "message": "py -m pip install msgpack failed (exit 1): x"})
    done = client.get(f"/gateways/{gateway.name}/install/")
    assert done.status_code == 286 and "failed (exit 1): x" in done.content.decode()
    assert "hx-trigger" not in done.content.decode()


@pytest.mark.django_db
def test_an_install_without_a_broker_says_so_and_leaves_nothing_in_flight(admin_client_, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    gateway = make_gateway(startup={"fix_argv": ["py", "-m", "pip", "install", "msgpack"],
                                    "fix": "py -m pip install msgpack", "error": "py cannot import msgpack"})
    response = admin_client_.post(f"/gateways/{gateway.name}/install/", follow=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert "The install was not sent: the task broker does not answer" in html and "make run" in html
    gateway.refresh_from_db()
    assert "install" not in gateway.startup and gateway.startup["fix_argv"]
    assert not Activity.objects.of(gateway).exists()
