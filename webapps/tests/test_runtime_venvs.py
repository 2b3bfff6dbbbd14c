"""An application's own virtualenv from its requirements file: built, stamped, rebuilt beside the old one.

One real build (the Flask example with gunicorn, from pip's cache after the first run); the stamp
and rebuild logic is driven with requirements files that install nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from webapps.runtime.engines import check_engine, install_command
from webapps.runtime.venvs import CURRENT, STAMP_FILE, VenvError, current_venv, ensure_venv, venv_state
from webapps.tests.example_servers import EXAMPLES


def test_the_flask_examples_virtualenv_is_built_with_its_engine(tmp_path: Path) -> None:
    lines: list[str] = []
    requirements = EXAMPLES / "flaskapp" / "requirements.txt"
    venv = ensure_venv(tmp_path / "venvs" / "7", requirements, "gunicorn", progress=lines.append)
    assert venv.built
    assert venv.path.parent == tmp_path / "venvs" / "7" and venv.python.exists()
    assert any("creating the virtualenv" in line for line in lines)
    assert any("gunicorn==27.0.1" in line for line in lines), lines
    out = subprocess.run([str(venv.python), "-c", "import flask, gunicorn, msgpack; print(gunicorn.__version__)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "27.0.1"
    assert check_engine(str(venv.python), "gunicorn") is None
    assert check_engine(str(venv.python), "granian").fix == install_command(str(venv.python), "granian")
    assert venv.stamp["engine"] == "gunicorn==27.0.1" and venv.stamp["requirements"] == str(requirements)
    assert venv_state(tmp_path / "venvs" / "7", requirements, "gunicorn") == "current"

    again: list[str] = []
    second = ensure_venv(tmp_path / "venvs" / "7", requirements, "gunicorn", progress=again.append)
    assert not second.built and second.path == venv.path
    assert again == [f"the virtualenv {venv.path} is up to date"]


def test_a_changed_file_is_built_beside_the_old_one_and_switched_at_the_end(tmp_path: Path) -> None:
    root = tmp_path / "v"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing yet\n")
    assert venv_state(root, requirements, None) == "missing"
    first = ensure_venv(root, requirements, None)
    assert first.built and (first.path / STAMP_FILE).exists()
    assert os.readlink(root / CURRENT) == first.path.name
    assert venv_state(root, requirements, None) == "current"

    requirements.write_text("# nothing yet, but changed\n")
    assert venv_state(root, requirements, None) == "stale"
    second = ensure_venv(root, requirements, None)
    assert second.built and second.path != first.path
    assert current_venv(root).path == second.path  # type: ignore[union-attr]
    assert first.path.is_dir(), "the previous virtualenv is kept: a running application may use it"

    requirements.write_text("# a third content\n")
    third = ensure_venv(root, requirements, None)
    assert not first.path.exists(), "older virtualenvs are removed"
    assert second.path.is_dir() and third.path.is_dir()


def test_the_engine_and_the_python_are_part_of_the_stamp(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("")
    ensure_venv(tmp_path / "v", requirements, None)
    assert venv_state(tmp_path / "v", requirements, "granian") == "stale"
    other = Path(sys.base_prefix) / "bin" / "python3"
    if os.path.realpath(other) != os.path.realpath(sys.executable):
        assert venv_state(tmp_path / "v", requirements, None, base_python=str(other)) == "stale"


def test_an_unfinished_build_is_never_current(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("")
    venv = ensure_venv(tmp_path / "v", requirements, None)
    (venv.path / STAMP_FILE).unlink()  # as after a crash in the middle of a build
    assert current_venv(tmp_path / "v") is None
    again = ensure_venv(tmp_path / "v", requirements, None)
    assert again.built and (again.path / STAMP_FILE).exists()


def test_a_pip_failure_says_why_with_its_last_lines_and_keeps_the_running_virtualenv(tmp_path: Path) -> None:
    root = tmp_path / "v"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("")
    good = ensure_venv(root, requirements, None)
    requirements.write_text("./no-such-project-folder\n")  # fails without asking any index
    lines: list[str] = []
    with pytest.raises(VenvError) as caught:
        ensure_venv(root, requirements, None, progress=lines.append)
    message = str(caught.value)
    assert "pip failed" in message and "Fix the requirements file" in message
    assert "no-such-project-folder" in message, message
    assert caught.value.lines and any(line.startswith("ERROR:") and line in message for line in caught.value.lines)
    assert any("no-such-project-folder" in line for line in lines), "the output is streamed as it comes"
    assert current_venv(root).path == good.path  # type: ignore[union-attr]
    assert [p.name for p in root.glob("env-*")] == [good.path.name], "the failed build is removed"


def test_a_missing_requirements_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(VenvError, match="does not exist; check its path"):
        ensure_venv(tmp_path / "v", tmp_path / "nope.txt", None)
    with pytest.raises(VenvError, match="is a folder"):
        ensure_venv(tmp_path / "v", tmp_path, None)


def test_an_unknown_engine_is_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("")
    with pytest.raises(VenvError, match="unknown engine 'waitress'"):
        ensure_venv(tmp_path / "v", requirements, "waitress")


def test_pip_gets_no_secret_of_the_portal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pip runs third-party build code: it gets the allowlist and its own PIP_* settings only.
    monkeypatch.setenv("DJANGO_SECRET_KEY", "portal-secret-value")
    monkeypatch.setenv("PIP_NO_COLOR", "1")
    project = tmp_path / "leak"
    project.mkdir()
    # An in-tree build backend that needs nothing installed: pip runs it at once, offline.
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n')
    (project / "backend.py").write_text(
        "import os, pathlib\n"
        f"pathlib.Path({str(tmp_path / 'seen.txt')!r}).write_text(os.environ.get('DJANGO_SECRET_KEY', 'none') + "
        "' ' + os.environ.get('PIP_NO_COLOR', 'none'))\n"
        "raise SystemExit('stop here')\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("./leak\n")
    with pytest.raises(VenvError):
        ensure_venv(tmp_path / "v", requirements, None)
    seen = (tmp_path / "seen.txt").read_text() if (tmp_path / "seen.txt").exists() else None
    assert seen is not None, "pip ran the build backend"
    assert seen == "none 1"
