"""The start pipeline of a web application (processes/pipeline.py): its virtualenv build is a step of
the start task, which runs on the host's build worker, and a Stop during the build wins at once: the
build is stopped where it is, and the start gives up without a refusal. Real worker, build worker,
keeper and pip, against a package index that holds every request until the test lets it go."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from conftest import wait_until
from gateways.tests.factories import make_gateway
from portal import paths
from portal.queues import build_queue, host_queue
from processes import pipeline
from processes.adapters import adapter_of
from processes.models import Activity
from webapps import adapter
from webapps.models import WebApp
from webapps.tests.test_webapp_start_stop import run, slow_index, webapp_processes  # noqa: F401
from webapps.tests.webapp_factories import app_dir, make_webapp


def build_processes(webapp: WebApp) -> list[psutil.Process]:
    """The processes of its virtualenv build (the builder, pip): their command lines name its folder."""
    root = str(adapter.venv_root(webapp))
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(root in word for word in proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.mark.worker
def test_a_stop_during_the_virtualenv_build_wins_at_once_and_ends_the_build(
        webapp_processes, tmp_path, slow_index):  # noqa: F811 (fixtures)
    url, release = slow_index
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--index-url {url}\nslowpkg\n")
    run("create", "/slow", "--directory", str(app_dir(tmp_path)), "--module", "hello",
        "--requirements", str(requirements))
    webapp = WebApp.objects.get(name="/slow")
    build_log = paths.VAR_DIR / "build-worker.log"
    before = build_log.stat().st_size
    run("start", "/slow")
    wait_until(lambda: build_processes(webapp), timeout=30, message="the build did not begin")
    # The start task itself went to the build worker (no second task for the build).
    with open(build_log, errors="replace") as f:
        f.seek(before)
        assert "processes.tasks.start_process" in f.read()
    webapp.refresh_from_db()
    assert webapp.startup.get("venv", {}).get("state") == "building" and webapp.shown_state == "starting"

    began = time.monotonic()
    out = run("stop", "/slow", "--wait", "--timeout", "20")
    took = time.monotonic() - began
    assert "/slow is stopped" in out
    # The build held its index for up to 120 s; the Stop did not wait for it (its lock, its slot).
    assert took < 10, f"the stop took {took:.1f} s"
    wait_until(lambda: not build_processes(webapp), timeout=10, message="the build outlived the stop")
    messages = list(Activity.objects.of(webapp).order_by("id").values_list("message", flat=True))
    assert any(m.startswith("Virtualenv build stopped after") for m in messages), messages
    assert "Start given up during the virtualenv build: a later request replaced it" in messages
    webapp.refresh_from_db()
    # Not a refusal: the start was replaced, nothing is wrong with the definition.
    assert (webapp.state, webapp.intent, webapp.last_error) == ("stopped", "", "")
    assert webapp.startup["venv"]["state"] == "stopped"
    # Nothing of the replaced start happens later, once the index answers.
    release.set()
    time.sleep(1.0)  # a window in which a late start would show; nothing to poll for
    webapp.refresh_from_db()
    assert (webapp.state, webapp.intent, webapp.last_error) == ("stopped", "", "")
    assert adapter.python_of(webapp) and not adapter.venv_root(webapp).joinpath("current").exists()


@pytest.mark.django_db
def test_a_start_with_a_virtualenv_to_build_goes_to_the_build_queue_the_rest_to_the_hosts(tmp_path: Path):
    host = settings.PORTAL_HOST_NAME
    folder = app_dir(tmp_path)
    (folder / "requirements.txt").write_text("# nothing beyond the engine\n")
    building = make_webapp(folder, name="/built", python_executable="",
                           requirements_file=str(folder / "requirements.txt"))
    plain = make_webapp(folder, name="/plain")
    assert pipeline.queue_for("start", building) == build_queue(host)
    assert pipeline.queue_for("restart", building) == build_queue(host)
    assert pipeline.queue_for("stop", building) == host_queue(host)
    assert pipeline.queue_for("start", plain) == host_queue(host)
    assert pipeline.queue_for("start", make_gateway()) == host_queue(host)
    # The steps, in order: the build first (long, with work to do now), then the checks.
    steps = adapter_of(building).start_steps(building)
    assert [(s.name, s.long, s.needed(building)) for s in steps] == [
        ("the virtualenv build", True, True), ("the checks", False, True)]
    assert [s.name for s in adapter_of(plain).start_steps(plain)] == ["the checks"]
