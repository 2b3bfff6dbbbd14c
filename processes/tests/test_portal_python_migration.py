"""Definitions saved with the portal's own interpreter written in full become empty (the portal's
own, wherever it runs) when the migrations run, as an upgrade would; any other interpreter stays,
and so does a web application's whose folder has a requirements.txt (empty would mean "build a
virtualenv from it" there). Runs on the configured engine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from processes.models import is_portal_python

BEFORE = [("gateways", "0009_help_texts"), ("webapps", "0004_help_texts")]


def _migrate(targets: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def test_only_the_portals_own_interpreter_file_counts_as_the_portals(tmp_path: Path) -> None:
    assert is_portal_python(sys.executable)
    assert not is_portal_python("") and not is_portal_python("/no/such/python")
    base = os.path.realpath(sys.executable)
    if base != sys.executable:  # a virtualenv: its base Python lacks the portal's packages
        assert not is_portal_python(base)
    link = tmp_path / "python"
    link.symlink_to(sys.executable)
    assert not is_portal_python(str(link)), "another folder's link is another interpreter to its owner"


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_empties_the_portals_own_interpreter_and_keeps_the_others(tmp_path: Path) -> None:
    plain, with_requirements = tmp_path / "plain", tmp_path / "with-requirements"
    plain.mkdir()
    with_requirements.mkdir()
    (with_requirements / "requirements.txt").write_text("flask\n")
    try:
        apps = _migrate(BEFORE)
        Gateway, WebApp = apps.get_model("gateways", "Gateway"), apps.get_model("webapps", "WebApp")
        Gateway.objects.create(name="Own", port=55001, python_executable=sys.executable, run_key=_key(1))
        Gateway.objects.create(name="Other", port=55002, python_executable="/usr/bin/python3", run_key=_key(2))
        WebApp.objects.create(name="/own", directory=str(plain), module="app",
                              python_executable=sys.executable, run_key=_key(3))
        WebApp.objects.create(name="/req", directory=str(with_requirements), module="app",
                              python_executable=sys.executable, run_key=_key(4))
        WebApp.objects.create(name="/old", directory=str(plain), module="app", workers=1, threads=1,
                              python_executable="/usr/bin/python3", run_key=_key(5))
        call_command("migrate", verbosity=0)
        from gateways.models import Gateway as NewGateway
        from webapps.models import WebApp as NewWebApp

        assert dict(NewGateway.objects.values_list("name", "python_executable")) == {
            "Own": "", "Other": "/usr/bin/python3"}
        assert dict(NewWebApp.objects.values_list("name", "python_executable")) == {
            "/own": "", "/req": sys.executable, "/old": "/usr/bin/python3"}
        # Existing definitions keep their workers and threads; only new ones get the new defaults.
        assert NewWebApp.objects.get(name="/old").workers == 1 and NewWebApp.objects.get(name="/old").threads == 1
    finally:
        call_command("migrate", verbosity=0)


def _key(n: int):  # type: ignore[no-untyped-def]
    import uuid

    return uuid.UUID(int=n)
