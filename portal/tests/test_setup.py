"""What `make run` does before the launcher starts anything: the folders in var/ and the pins."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings


def test_a_fresh_var_folder_is_created_with_a_secret_key_set(tmp_path):
    """PORTAL_SECRET_KEY set means no key file is written; the database must still open."""
    var = tmp_path / "fresh" / "var"
    env = {
        k: v for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "PORTAL_DATABASE_URL"}
    }
    env.update({"PORTAL_VAR_DIR": str(var), "PORTAL_SECRET_KEY": "x" * 50})
    out = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=settings.BASE_DIR,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (var / "portal.sqlite3").is_file()
    assert not (var / "secret_key").exists()
    for folder in ("log", "run", "redis"):
        assert (var / folder).is_dir(), folder


def test_make_test_fails_when_pytest_runs_no_test():
    """pytest's exit code 5 (nothing collected or all deselected) is a failure of `make test`, with a message."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DJANGO_", "MAKE"))}
    out = subprocess.run(
        # -o: take the virtualenv as installed; this test is about the exit code only.
        ["make", "-o", ".venv/.installed-dev", "test",
         "PYTEST_ARGS=portal/tests/test_setup.py -k no_such_test_anywhere -q"],
        env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode != 0
    assert "pytest ran no test (exit code 5)" in out.stderr
