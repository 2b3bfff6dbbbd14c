"""The install button's one task for every kind (processes.tasks.install_requirements): what it
installs, and which refusal it clears, come from the kind's adapter (``install_of``). Real checks:
the portal's own interpreter, which has msgpack and the engines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gateways.tests.factories import make_gateway
from processes import tasks
from processes.models import Activity
from webapps.tests.webapp_factories import app_dir, make_webapp

pytestmark = pytest.mark.django_db


def test_one_task_says_for_each_kind_what_its_interpreter_already_has(tmp_path: Path) -> None:
    gateway = make_gateway(python_executable=sys.executable)
    webapp = make_webapp(app_dir(tmp_path), python_executable=sys.executable, engine="gunicorn")
    assert tasks.install_requirements("gateway", gateway.pk, "ada") == {
        "ok": True, "message": f"Nothing to install: {sys.executable} already imports msgpack"}
    assert tasks.install_requirements("webapp", webapp.pk, "ada") == {
        "ok": True, "message": f"Nothing to install: {sys.executable} already runs gunicorn"}
    for obj in (gateway, webapp):
        obj.refresh_from_db()
        assert obj.startup["install"]["state"] == "done"
        assert Activity.objects.of(obj).filter(message__startswith="Nothing to install: ", trigger="ada").exists()


def test_a_done_install_clears_the_refusal_it_answered_and_no_other(tmp_path: Path) -> None:
    refused = {"error": "Start refused: it lacks msgpack", "check": "modules-missing", "fix": "pip install msgpack"}
    answered = make_gateway(python_executable=sys.executable, startup=refused, last_error=refused["error"])
    other = make_gateway(name="Other", port=55002, python_executable=sys.executable,
                         startup={**refused, "check": "port-busy"}, last_error=refused["error"])
    engine = make_webapp(app_dir(tmp_path), python_executable=sys.executable,
                         startup={**refused, "check": "engine-missing"}, last_error=refused["error"])
    for kind, obj in (("gateway", answered), ("gateway", other), ("webapp", engine)):
        assert tasks.install_requirements(kind, obj.pk)["ok"]
    answered.refresh_from_db()
    other.refresh_from_db()
    engine.refresh_from_db()
    assert answered.last_error == "" and "check" not in answered.startup
    assert engine.last_error == "" and "check" not in engine.startup
    assert other.last_error == refused["error"] and other.startup["check"] == "port-busy"


def test_a_deleted_definition_is_said_not_raised() -> None:
    assert tasks.install_requirements("gateway", 0) == {"error": "the definition was deleted"}
