"""An engine that runs without one of its extras starts, with a warning that says what is lost:
uvicorn without websockets serves HTTP, and answers websocket upgrades with 404.

A real interpreter that has uvicorn and not websockets: a virtualenv whose site-packages holds
uvicorn and what it needs (click, h11) from the portal's, and nothing else.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from processes.models import Activity
from webapps import adapter
from webapps.runtime.engines import AppRun, check_engine, engine_warnings
from webapps.tests.runtime_helpers import short_dir, started, wait_for_answer
from webapps.tests.webapp_factories import ASGI_APP, app_dir, make_webapp

pytestmark = pytest.mark.django_db


def uvicorn_without_websockets(base: Path) -> str:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "uv")], check=True)
    python = base / "uv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for package in ("uvicorn", "click", "h11"):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin, f"the portal's interpreter lacks {package}"
        os.symlink(os.path.dirname(spec.origin), site / package)
    assert subprocess.run([str(python), "-c", "import uvicorn"], check=False).returncode == 0
    assert subprocess.run([str(python), "-c", "import websockets"], capture_output=True,
                          check=False).returncode != 0
    return str(python)


def test_uvicorn_without_websockets_is_not_refused_but_warned_about(tmp_path: Path) -> None:
    python = uvicorn_without_websockets(tmp_path)
    assert check_engine(python, "uvicorn") is None
    [warning] = engine_warnings(python, "uvicorn")
    assert warning.startswith(f"{python} lacks websockets: uvicorn serves HTTP without it, but answers every "
                              "websocket upgrade with 404. Add it with: ")
    assert "uvicorn[standard]" in warning
    assert engine_warnings(sys.executable, "uvicorn") == []  # the portal's has websockets


def test_its_start_goes_on_with_the_warning_in_the_activity_and_it_serves(tmp_path: Path) -> None:
    python = uvicorn_without_websockets(tmp_path)
    folder = app_dir(tmp_path, ASGI_APP)
    webapp = make_webapp(folder, protocol="asgi", engine="uvicorn", python_executable=python)
    assert adapter.preflight(webapp) is None
    warnings = list(Activity.objects.filter(object_id=webapp.pk, level="warning").values_list("message", flat=True))
    assert any("lacks websockets" in w and "websocket upgrade" in w for w in warnings), warnings
    run = short_dir("nows")
    try:
        app = AppRun(mount="/hello", directory=str(folder), module="hello", socket=str(run / "app.sock"),
                     protocol="asgi", engine="uvicorn", python=python)
        with started(app, run / "run") as running:
            wait_for_answer(running, "/", "hello", timeout=30)
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_a_distributions_own_python_is_not_told_to_pip_install(tmp_path: Path) -> None:
    from portal.process.checks import check_modules

    python = "/usr/bin/python3"
    stdlib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True, check=False).stdout.strip()
    if not stdlib or not os.path.exists(os.path.join(stdlib, "EXTERNALLY-MANAGED")):
        pytest.skip(f"this host's {python} is not managed by its distribution (Debian 12 and later's is)")
    failure = check_modules(python, ["msgpack"])
    assert failure is not None and failure.code == "modules-missing"
    assert failure.fix_argv is None  # no button that runs a pip the distribution refuses
    assert "externally-managed-environment" in failure.message
    assert "apt-get install python3-msgpack" in failure.message
    assert f"{python} -m venv /opt/python-venv && /opt/python-venv/bin/pip install msgpack" in failure.message
    assert "pip install msgpack" not in failure.message.replace("/opt/python-venv/bin/pip install msgpack", "")
