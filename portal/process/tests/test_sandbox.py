"""The sandbox's exec wrapper (portal/process/sandbox.py) on the portal's own layout, var/ inside the
project: real processes, real Landlock. Skips on a kernel without Landlock ABI 6 (see
webapps/tests/test_sandbox.py::test_this_kernel_has_landlock, which does not)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portal.process import sandbox

ABI = sandbox.abi_version()
pytestmark = pytest.mark.skipif(
    isinstance(ABI, str) or ABI < sandbox.ABI_NEEDED,
    reason=f"needs Landlock ABI >= {sandbox.ABI_NEEDED} (here: {ABI}); run on Linux >= 6.12 with Landlock enabled",
)

CHECK = """
import errno, os, sys
base = sys.argv[1]

def attempt(action):
    try:
        action()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]

import pkgx
print("import", pkgx.NAME)
print("secret", attempt(lambda: open(os.path.join(base, "var", "secret_key")).read()))
print("list var", attempt(lambda: os.listdir(os.path.join(base, "var"))))
print("run dir", attempt(lambda: open(os.path.join(base, "var", "run", "app", "status"), "w").write("x")))
print("code", attempt(lambda: open(os.path.join(base, "pkgx", "evil.py"), "w")))
print("early", attempt(lambda: open(os.path.join(base, "early.txt")).read()))
sys.stdin.readline()  # the test makes late.txt now
print("late", attempt(lambda: open(os.path.join(base, "late.txt")).read()), flush=True)
"""


def project(tmp_path: Path) -> Path:
    """A project like the portal's: a package, and var/ beside it with a secret and a run directory."""
    base = tmp_path / "portal"
    (base / "pkgx").mkdir(parents=True)
    (base / "pkgx" / "__init__.py").write_text('NAME = "pkgx"\n')
    (base / "var" / "run" / "app").mkdir(parents=True)
    (base / "var" / "secret_key").write_text("s3cret")
    (base / "early.txt").write_text("early")
    return base


def test_var_inside_the_project_is_hidden_and_the_project_s_packages_still_import(tmp_path):
    """The project's root is an ancestor of var/, so it gets no rule and cannot be listed; Python lists
    each folder of its path before importing from it, so PYTHONPATH=root is replaced by a mirror of
    links in the run directory. The limit of the carve-out shows too: late.txt, made beside var/ after
    the start, is covered by no rule."""
    base = project(tmp_path)
    run_dir = base / "var" / "run" / "app"
    pol = sandbox.portal_policy(var_dir=str(base / "var"), base_dir=str(base), run_dir=str(run_dir))
    child = subprocess.Popen(sandbox.wrap([sys.executable, "-u", "-c", CHECK, str(base)], pol), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(base)})
    assert child.stdout is not None and child.stdin is not None
    first = [child.stdout.readline().strip() for _ in range(6)]
    (base / "late.txt").write_text("late")
    child.stdin.write("go\n")
    child.stdin.flush()
    out, err = child.communicate(timeout=10)
    assert first == ["import pkgx", "secret EACCES", "list var EACCES", "run dir ok", "code EACCES", "early ok"], err
    assert out.strip() == "late EACCES"
    assert sorted(p.name for p in (run_dir / "pythonpath-0").iterdir()) == ["early.txt", "pkgx"]


def test_a_bad_wrapper_command_line_says_how_to_call_it(tmp_path):
    script = Path(sandbox.__file__)
    result = subprocess.run([sys.executable, "-I", "-S", str(script), "--hidden"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--hidden needs a value; usage: sandbox.py" in result.stderr
