"""A web application defined with neither an interpreter nor a requirements file, whose folder holds a
requirements.txt, runs from a virtualenv built from that file, as a PaaS does: the form, the page and
the Activity say so, a change of the file rebuilds it, and once the file is gone the portal's own
interpreter runs it again. Real worker, keeper, pip and gunicorn."""

from __future__ import annotations

import os
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from processes.models import Activity
from webapps import adapter
from webapps.models import WebApp
from webapps.tests.test_webapp_start_stop import get_over_socket, run, webapp_processes  # noqa: F401

pytestmark = [pytest.mark.worker]

# Answers with the interpreter's prefix: which Python serves it.
WHICH_PYTHON = '''
import sys


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [sys.prefix.encode()]
'''


def test_the_folders_requirements_txt_is_used_rebuilt_when_changed_and_left_when_removed(webapp_processes,  # noqa: F811
                                                                                           tmp_path, settings):
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "which.py").write_text(WHICH_PYTHON)
    requirements = folder / "requirements.txt"
    requirements.write_text("# nothing beyond the engine\n")
    err = StringIO()
    call_command("webapp", "create", "/which", "--directory", str(folder), "--module", "which", stdout=StringIO(),
                 stderr=err)
    assert f"the application directory has {requirements}: the portal builds" in err.getvalue()
    assert "give --python /path/to/python" in err.getvalue()
    webapp = WebApp.objects.get()
    assert (webapp.python_executable, webapp.requirements_file, webapp.requirements) == ("", "", str(requirements))

    client = Client()
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    # (Paths carry <wbr> at their separators: portal.templatetags.layout.breakable.)
    page = client.get("/webapps/which/").content.decode().replace("<wbr>", "")
    assert str(requirements) in page and "found in the application directory" in page

    assert "/which is running" in run("start", "/which", "--wait", "--timeout", "300")
    root = adapter.venv_root(webapp)
    assert get_over_socket(webapp, "/which/")[1].decode().startswith(str(root))
    messages = list(Activity.objects.of(webapp).values_list("message", flat=True))
    assert f"Building the virtualenv from {requirements} (its folder's: the definition names neither an " \
           f"interpreter nor a requirements file) with gunicorn" in messages
    run("stop", "/which", "--wait")

    # Changed, as an explicit requirements file: the next start rebuilds.
    requirements.write_text("# nothing beyond the engine, said again\n")
    assert "/which is running" in run("start", "/which", "--wait", "--timeout", "300")
    assert Activity.objects.of(webapp).filter(message__startswith=f"Rebuilding the virtualenv from {requirements}")\
        .exists()
    run("stop", "/which", "--wait")

    # Gone: the portal's own interpreter runs it, and the page says so.
    requirements.unlink()
    assert "/which is running" in run("start", "/which", "--wait", "--timeout", "60")
    assert os.path.realpath(get_over_socket(webapp, "/which/")[1].decode()) == os.path.realpath(sys.prefix)
    page = client.get("/webapps/which/").content.decode()
    assert "found in the application directory" not in page and "The portal's own" in page
    run("stop", "/which", "--wait")
