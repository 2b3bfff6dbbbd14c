"""A merge with restart on a running web application: a real worker, keeper and gunicorn."""

from __future__ import annotations

import pytest

from conftest import wait_until
from portal.cpf import merge
from processes.models import Activity
from webapps.models import WebApp
from webapps.tests.test_webapp_start_stop import get_over_socket, run, webapp_processes  # noqa: F401 (fixture)
from webapps.tests.webapp_factories import app_dir

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("webapp_processes")]


def test_a_merge_with_restart_stops_changes_and_starts_a_running_application(tmp_path, administrator):
    folder = app_dir(tmp_path)
    created = merge.merge(f"[Actions]\nCreateApplication:Name=/hello,WSGIAppLocation={folder},WSGIAppName=hello\n",
                          administrator, apply=True)
    assert created.problems == []
    assert "/hello is running" in run("start", "/hello", "--wait", "--timeout", "40")
    old_pid = WebApp.objects.get().pid
    text = "[Actions]\nModifyApplication:Name=/hello,Workers=3,NameSpace=USER\n"

    refused = merge.merge(text, administrator, apply=True)
    assert refused.problems[0].key == "Workers" and "is running: stop it first" in refused.problems[0].message

    result = merge.merge(text, administrator, apply=True, restart=True)
    assert result.problems == [] and result.restarted == ["/hello"]
    webapp = wait_until(lambda: WebApp.objects.filter(state="running", intent="").exclude(pid=old_pid).first(),
                        timeout=40, message="/hello did not run again")
    assert (webapp.workers, webapp.namespace) == (3, "USER")
    assert get_over_socket(webapp, "/hello/") == (200, b"hello from /hello")
    asked = list(Activity.objects.of(webapp).filter(message__in=["Stop requested", "Start requested"])
                 .order_by("id").values_list("message", "trigger"))
    assert asked[-2:] == [("Stop requested", "cpf merge:ada"), ("Start requested", "cpf merge:ada")]
    run("stop", "/hello", "--wait")
