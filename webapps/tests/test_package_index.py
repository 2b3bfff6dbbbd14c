"""A site without internet names its own package index or wheel folder (PORTAL_PACKAGE_INDEX,
PORTAL_PACKAGE_FIND_LINKS): every build uses it, in its environment only (an index URL may carry
a token), and no application gets it. Real builds: pip against a folder of wheels, and against a
local index that records what it is asked."""

from __future__ import annotations

import base64
import subprocess
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.process.packages import describe, index_environment, mask
from webapps import adapter
from webapps.runtime.venvs import VenvError, build_as
from webapps.tests.webapp_factories import app_dir, make_webapp

pytestmark = pytest.mark.django_db


def tiny_wheel(folder: Path) -> Path:
    """A wheel pip installs without asking any index: one module, its metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "portaltinypkg-1.0-py3-none-any.whl"
    info = "portaltinypkg-1.0.dist-info"
    files = {
        "portaltinypkg.py": "VALUE = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: portaltinypkg\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"{info}/RECORD", "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"]))
    wheel.chmod(0o644)
    return folder


def build(webapp, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The build as the portal runs it, with the environment the portal gives it (no engine: the
    wheel folder holds none; the engine is one more requirement to pip)."""
    lines: list[str] = []
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    venv = build_as(tmp_path / "venvs", webapp.requirements, None, argv_prefix=[],
                    env=adapter.build_environment(webapp, None), cwd=str(home), popen_kwargs={},
                    progress=lines.append, timeout=240)
    return venv, lines


def test_a_wheel_folder_alone_builds_the_virtualenv(tmp_path, settings):
    wheels = tiny_wheel(tmp_path / "wheelhouse")
    settings.PORTAL_PACKAGE_ENV = index_environment("none", str(wheels))
    folder = app_dir(tmp_path)
    (folder / "requirements.txt").write_text("portaltinypkg==1.0\n")
    webapp = make_webapp(folder, python_executable="")
    assert webapp.requirements == str(folder / "requirements.txt")
    venv, lines = build(webapp, tmp_path)
    out = subprocess.run([str(venv.python), "-c", "import portaltinypkg; print(portaltinypkg.VALUE)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "42"
    assert any("portaltinypkg" in line for line in lines), lines


def test_an_index_with_a_token_is_asked_with_it_and_the_token_is_shown_nowhere(tmp_path, settings):
    asked: list[tuple[str, str]] = []

    class Index(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append((self.path, self.headers.get("Authorization", "")))
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = "s3cret-token-xyz"
    url = f"http://builder:{token}@127.0.0.1:{server.server_address[1]}/simple/"
    try:
        settings.PORTAL_PACKAGE_ENV = index_environment(url, "")
        folder = app_dir(tmp_path)
        (folder / "requirements.txt").write_text("portalnosuchpkg\n")
        webapp = make_webapp(folder, python_executable="")
        with pytest.raises(VenvError) as failed:
            build(webapp, tmp_path)
    finally:
        server.shutdown()
    credentials = "Basic " + base64.b64encode(f"builder:{token}".encode()).decode()
    assert ("/simple/portalnosuchpkg/", credentials) in asked, asked
    said = str(failed.value) + "\n".join(failed.value.lines)
    assert "portalnosuchpkg" in said and token not in said
    assert describe(settings.PORTAL_PACKAGE_ENV) == f"the index {mask(url)}"
    assert token not in describe(settings.PORTAL_PACKAGE_ENV)


def test_no_application_gets_the_index_settings(tmp_path, settings):
    settings.PORTAL_PACKAGE_ENV = index_environment("https://t:k@pypi.example.com/simple", "/srv/wheelhouse")
    webapp = make_webapp(app_dir(tmp_path), python_executable="")
    env = adapter.build_environment(webapp, None)
    assert env["PIP_INDEX_URL"] == "https://t:k@pypi.example.com/simple" and env["PIP_FIND_LINKS"] == "/srv/wheelhouse"
    spec = adapter.build_spec(webapp)
    assert not [name for name in spec.env if name.startswith("PIP_")]
    assert "pypi.example.com" not in " ".join(spec.argv) + " ".join(spec.env.values())


@pytest.mark.parametrize("index, links, words", [
    ("none", "", "PORTAL_PACKAGE_INDEX=none leaves pip nowhere to find packages: set PORTAL_PACKAGE_FIND_LINKS"),
    ("pypi.example.com/simple", "", "PORTAL_PACKAGE_INDEX='pypi.example.com/simple' is not a URL"),
    ("ftp://u:tok@host/simple", "", "PORTAL_PACKAGE_INDEX='host/simple' is not a URL"),
    ("", "wheelhouse", "PORTAL_PACKAGE_FIND_LINKS names 'wheelhouse', which is neither a full path nor a URL"),
])
def test_a_bad_setting_stops_the_portal_saying_how_to_fix_it(index, links, words):
    with pytest.raises(ValueError, match=None) as bad:
        index_environment(index, links)
    assert words in str(bad.value)
    assert "tok" not in str(bad.value)


def test_the_settings_module_refuses_a_bad_index(monkeypatch):
    from portal import settings as portal_settings

    monkeypatch.setenv("PORTAL_PACKAGE_INDEX", "none")
    monkeypatch.delenv("PORTAL_PACKAGE_FIND_LINKS", raising=False)
    with pytest.raises(ImproperlyConfigured, match="PORTAL_PACKAGE_INDEX=none leaves pip nowhere"):
        portal_settings._package_env()
    monkeypatch.setenv("PORTAL_PACKAGE_FIND_LINKS", "/srv/a /srv/b https://example.com/wheels/")
    assert portal_settings._package_env() == {"PIP_NO_INDEX": "1",
                                              "PIP_FIND_LINKS": "/srv/a /srv/b https://example.com/wheels/"}


def test_make_builds_the_portals_own_virtualenv_from_the_same_index_without_a_command_line_token():
    """The Makefile's recipes (pip install -r requirements.txt) get pip's variables in their
    environment, and make prints no recipe line that holds them."""
    import os

    from django.conf import settings as django_settings

    probe = "show-pip: ; @env | grep ^PIP_ | sort"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PORTAL_PACKAGE_", "MAKE"))}
    offline = subprocess.run(["make", "-s", "--eval", probe, "show-pip"], cwd=django_settings.BASE_DIR,
                             env={**env, "PORTAL_PACKAGE_INDEX": "none", "PORTAL_PACKAGE_FIND_LINKS": "/srv/wheelhouse"},
                             capture_output=True, text=True, check=True)
    assert offline.stdout.split() == ["PIP_FIND_LINKS=/srv/wheelhouse", "PIP_NO_INDEX=1"]
    url = "https://build:s3cret@pypi.example.com/simple"
    # What make prints of the recipes that install the portal's requirements (-n: printed, not run).
    recipes = subprocess.run(["make", "-n", "-B", ".venv/.installed"], cwd=django_settings.BASE_DIR,
                             env={**env, "PORTAL_PACKAGE_INDEX": url}, capture_output=True, text=True, check=True)
    assert "pip install --quiet -r requirements.txt" in recipes.stdout and "s3cret" not in recipes.stdout
    shown = subprocess.run(["make", "-s", "--eval", probe, "show-pip"], cwd=django_settings.BASE_DIR,
                           env={**env, "PORTAL_PACKAGE_INDEX": url}, capture_output=True, text=True, check=True)
    assert shown.stdout.split() == [f"PIP_INDEX_URL={url}"]
