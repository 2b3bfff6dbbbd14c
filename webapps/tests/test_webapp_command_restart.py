"""manage.py webapp edit --restart: a running application saved and restarted in one command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from processes.models import Activity
from webapps.models import WebApp
from webapps.tests.webapp_factories import app_dir, make_webapp

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("webapp", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_edit_restart_saves_and_restarts_a_running_application(tmp_path, redis_service):
    make_webapp(app_dir(tmp_path), state="running", pid=4242)
    with pytest.raises(CommandError, match="stop /hello first, then change workers"):
        run("edit", "/hello", "--workers", "2")
    output = run("edit", "/hello", "--workers", "2", "--restart")
    assert output.startswith("Web application /hello was saved, and its restart was requested")
    webapp = WebApp.objects.get()
    assert webapp.workers == 2 and webapp.requested == "restart"
    assert Activity.objects.of(webapp).get().message == "Restart requested"


def test_edit_restart_of_a_stopped_application_only_saves(tmp_path):
    make_webapp(app_dir(tmp_path))
    output = run("edit", "/hello", "--workers", "2", "--restart")
    assert output == ("Web application /hello was saved, but not restarted: /hello is not running, so there was "
                      "nothing to restart: the change applies at its next start.\n")
    assert WebApp.objects.get().workers == 2 and not Activity.objects.exists()
