"""The code that runs without Django never imports it.

The gateway server, its client and protocol run under any CPython 3.9+ with only
msgpack; the keeper (portal/process) runs detached from any worker and must start
fast. Each module is imported in a fresh interpreter, so that nothing this test
process already imported can hide an import of Django.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _modules_in(folder: str) -> list[str]:
    """The package ``folder`` and every module in it (tests excluded)."""
    package = folder.replace("/", ".")
    modules = sorted(f"{package}.{path.stem}" for path in (ROOT / folder).glob("*.py") if path.stem != "__init__")
    return [package, *modules]


def django_free_modules() -> list[str]:
    modules = [
        "gateways.server",
        "gateways.server_guard",
        "gateways.client",
        "gateways.probe",  # imported by the keeper
        "gateways.exposure",
        *_modules_in("gateways/protocol"),
        *_modules_in("portal/process"),
    ]
    # The web applications' front (dispatcher) is Django-free too, on branches that have it.
    if (ROOT / "webapps" / "front").is_dir():
        modules += _modules_in("webapps/front")
    elif (ROOT / "webapps" / "front.py").is_file():
        modules.append("webapps.front")
    # The runtime of a web application (engines, app check, virtualenvs): the keeper and the
    # application's own interpreter run it.
    if (ROOT / "webapps" / "runtime").is_dir():
        modules += _modules_in("webapps/runtime")
    return modules


def django_modules_after_importing(module: str) -> list[str]:
    """The django modules loaded by ``import module`` in a fresh interpreter."""
    # -I: no PYTHONPATH, no user site, not the current directory; the project root is
    # the only path added, so the answer depends on the module alone.
    code = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"import {module} failed:\n{result.stderr}"
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", django_free_modules())
def test_the_module_imports_without_django(module):
    assert django_modules_after_importing(module) == [], f"{module} imports Django"


def test_the_check_sees_a_module_that_imports_django():
    # An app's AppConfig imports django.apps: the same check must notice it.
    assert "django.apps" in django_modules_after_importing("gateways.apps")


def test_every_part_of_the_protocol_and_of_the_keeper_is_checked():
    modules = django_free_modules()
    for name in ("codec", "endpoint", "framing", "handshake", "objects", "proxies", "wire", "errors"):
        assert f"gateways.protocol.{name}" in modules
    for name in ("keeper", "daemon", "supervisor", "journal", "rundir", "probes", "child", "lock", "spec", "reload"):
        assert f"portal.process.{name}" in modules
    for name in ("engines", "appcheck", "check_app", "venvs"):
        assert f"webapps.runtime.{name}" in modules
