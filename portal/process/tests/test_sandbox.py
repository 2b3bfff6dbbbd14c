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

# What each check script starts with: its base folder and a way to say what an action met.
PRELUDE = """
import errno, os, sys
base = sys.argv[1]

def attempt(action):
    try:
        action()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
"""

CHECK = PRELUDE + """
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
    # The code: EACCES from Landlock, or EROFS first from the read-only bind of the mount namespace
    # the wrapper adds when the process owns var/ (as here).
    assert first[4] in ("code EACCES", "code EROFS"), err
    first[4] = "code refused"
    assert first == ["import pkgx", "secret EACCES", "list var EACCES", "run dir ok", "code refused", "early ok"], err
    assert out.strip() == "late EACCES"
    assert sorted(p.name for p in (run_dir / "pythonpath-0").iterdir()) == ["early.txt", "pkgx"]


def test_a_bad_wrapper_command_line_says_how_to_call_it(tmp_path):
    script = Path(sandbox.__file__)
    result = subprocess.run([sys.executable, "-I", "-S", str(script), "--hidden"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--hidden needs a value; usage: sandbox.py" in result.stderr


CHMOD = PRELUDE + """
print("chmod var", attempt(lambda: os.chmod(os.path.join(base, "var"), 0o755)))
print("chmod secret", attempt(lambda: os.chmod(os.path.join(base, "var", "secret_key"), 0o644)))
print("chmod code", attempt(lambda: os.chmod(os.path.join(base, "pkgx", "__init__.py"), 0o666)))
print("write own", attempt(lambda: open(os.path.join(base, "app", "data.txt"), "w").write("x")))
print("umount", attempt(lambda: os.system("umount " + os.path.join(base, "var") + " 2>/dev/null")
                        and (_ for _ in ()).throw(OSError(errno.EPERM, "umount"))))
"""


@pytest.mark.skipif(sandbox.userns_unavailable() is not None,
                    reason=f"this kernel lets no user make a namespace: {sandbox.userns_unavailable()}")
@pytest.mark.parametrize("namespace", ["on", "off"])
def test_code_of_the_portal_s_own_user_cannot_chmod_var_or_the_code(tmp_path, namespace):
    """Landlock does not check chmod: a process of the portal's own user (the portal does not run as
    root, so it cannot give hosted code a user of its own) could open var/ and its files to every
    local user. The wrapper's private mount namespace covers var/ and binds the installation
    read-only; its own folder stays writable. With --namespace off the chmods go through (so the
    test can fail). As root, the test runs the wrapper as a user that owns the project, as the
    portal's user would."""
    import os

    base = project(tmp_path)
    (base / "app").mkdir()
    kwargs = {}
    if os.geteuid() == 0:
        tmp_path.chmod(0o755)
        subprocess.run(["chown", "-R", "40123:40123", str(base)], check=True)
        kwargs = {"user": 40123, "group": 40123, "extra_groups": []}
    pol = sandbox.portal_policy(var_dir=str(base / "var"), base_dir=str(base), run_dir=str(base / "app"))
    pol["namespace"] = namespace == "on"
    result = subprocess.run(sandbox.wrap([sys.executable, "-c", CHMOD, str(base)], pol), capture_output=True,
                            text=True, timeout=30, env={"PATH": "/usr/bin:/bin"}, **kwargs)
    lines = result.stdout.split("\n")
    if namespace == "on":
        assert lines[:5] == ["chmod var EROFS", "chmod secret EACCES", "chmod code EROFS", "write own ok",
                             "umount EPERM"], result.stderr
    else:
        assert lines[:4] == ["chmod var ok", "chmod secret ok", "chmod code ok", "write own ok"], result.stderr
