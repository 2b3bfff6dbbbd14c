"""The processes the suite starts (worker, manage.py) open the suite's test database, on either engine."""

import json
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from conftest import worker_env
from gateways.tests.factories import make_gateway


@pytest.mark.django_db(transaction=True)
def test_a_manage_py_process_reads_what_the_test_wrote():
    make_gateway(name="SeenElsewhere", port=55011)
    code = "from django.db import connection as c; print(c.vendor, c.settings_dict['NAME'])"
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        env=worker_env(), cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60,
    )
    assert shell.stdout.splitlines()[-1:] == [f"{connection.vendor} {connection.settings_dict['NAME']}"], shell.stderr
    listed = subprocess.run(
        [sys.executable, "manage.py", "gateway", "list", "--json"],
        env=worker_env(), cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60,
    )
    assert [g["name"] for g in json.loads(listed.stdout or "[]")] == ["SeenElsewhere"], listed.stderr
