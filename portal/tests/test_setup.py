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


# What the parts of `make run` import, in a child whose imports are limited to the
# distributions that requirements.txt brings: the portal's modules, every view and
# task, the broker transport, the Celery worker and beat, and gunicorn.
RUNTIME_IMPORTS = """
import importlib.abc, json, sys
allowed = set(json.loads(sys.argv[1]))

class OnlyRequirements(importlib.abc.MetaPathFinder):
    # A package outside requirements.txt is missing, as in a virtualenv built from it alone;
    # optional imports (try: import yaml) then take their fallback, as they would there.
    def find_spec(self, name, path, target=None):
        top = name.partition(".")[0]
        if path is None and top not in allowed and top not in sys.stdlib_module_names \\
                and not top.startswith("_sysconfigdata"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, OnlyRequirements())
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns
from portal.celery import app
app.loader.import_default_modules()
app.connection_for_write().transport
import celery.apps.worker, celery.beat, celery.concurrency.prefork, celery.bin.celery
import gunicorn.app.wsgiapp, gunicorn.workers.gthread
import portal.wsgi, portal.launcher, portal.redis_server
"""


def requirements_closure(path) -> set[str]:
    """The distributions that `pip install -r path` installs: the pins and what they require."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    todo = [
        Requirement(line.split("#")[0].strip())
        for line in path.read_text().splitlines()
        if line.split("#")[0].strip() and not line.startswith("-")
    ]
    seen: dict[str, set[str]] = {}
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        extras = set(req.extras)
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        for text in metadata.distribution(name).requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in seen[name] | {""}):
                todo.append(sub)
    return set(seen)


def test_the_runtime_imports_nothing_that_requirements_txt_does_not_bring():
    """A package that only the dev requirements bring (e.g. packaging, via pytest) hides a broken `make run`."""
    import json
    from importlib import metadata

    from packaging.utils import canonicalize_name

    base = settings.BASE_DIR
    runtime = requirements_closure(base / "requirements.txt")
    dev_only = requirements_closure(base / "requirements-dev.txt") - runtime
    assert dev_only, "the dev requirements bring nothing more: this test would not see a missing pin"
    allowed = {"portal", "processes", "gateways", "webapps", "programs"} | {
        module for module, dists in metadata.packages_distributions().items()
        if any(canonicalize_name(d) in runtime for d in dists)
    }
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["DJANGO_SETTINGS_MODULE"] = "portal.test_settings"
    out = subprocess.run(
        [sys.executable, "-c", RUNTIME_IMPORTS, json.dumps(sorted(allowed))], env=env, cwd=base,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, f"the runtime needs a package that requirements.txt does not bring:\n{out.stderr[-2000:]}"
