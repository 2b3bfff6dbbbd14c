"""A program runs in its Landlock sandbox: var/ hidden, the portal's code read-only, the portal's processes
out of reach; the rest of the host writable where its user may write (as a gateway's). Real worker,
real keeper, a real program reporting what it met."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

from conftest import wait_until
from portal import paths
from portal.process import sandbox
from processes import control
from programs.tests.conftest import make_program, wait_state

pytestmark = [pytest.mark.worker]

ABI = sandbox.abi_version()
needs_landlock = pytest.mark.skipif(
    isinstance(ABI, str) or ABI < sandbox.ABI_NEEDED,
    reason=f"needs Landlock ABI >= {sandbox.ABI_NEEDED} (here: {ABI}); run on Linux >= 6.12 with Landlock enabled",
)

PROBE = textwrap.dedent('''
    import json, os, sys, time
    report, secret, var, evil, shared, portal_pid = sys.argv[1:7]

    def attempt(fn):
        try:
            fn()
            return "ok"
        except OSError as e:
            return type(e).__name__

    met = {
        "read the secret key": attempt(lambda: open(secret).read()),
        "list var/": attempt(lambda: os.listdir(var)),
        "write the portal's code": attempt(lambda: open(evil, "w").write("print('owned')")),
        "signal the portal": attempt(lambda: os.kill(int(portal_pid), 0)),
        "read the portal's environ": attempt(lambda: open(f"/proc/{portal_pid}/environ").read()),
        "write elsewhere": attempt(lambda: open(os.path.join(shared, "work.txt"), "w").write("done")),
    }
    with open(report, "w") as f:
        json.dump(met, f)
    print("reported", flush=True)
    time.sleep(300)
''')


@needs_landlock
def test_a_program_cannot_reach_var_the_portal_s_code_or_processes(program_processes, operator, tmp_path, request):
    tmp_path.chmod(0o755)
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    script.chmod(0o644)
    # Outside /tmp, which every sandbox leaves writable: the rest of the host proper.
    shared = Path(tempfile.mkdtemp(prefix="program-sandbox-", dir="/opt" if os.access("/opt", os.W_OK) else str(Path.home())))
    shared.chmod(0o777)
    secret = paths.VAR_DIR / "secret_key"
    if not secret.exists():
        secret.write_bytes(b"stand-in")
        secret.chmod(0o600)
    evil = settings.BASE_DIR / "sandbox_program_probe.py"
    report = shared / "report.json"
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    program = make_program(name="prober", command=" ".join([
        "/usr/bin/python3", str(script), str(report), str(secret), str(paths.VAR_DIR), str(evil), str(shared),
        str(os.getpid())]))
    control.request(program, "start", operator)
    program = wait_state(program, {"running", "fatal"})
    try:
        assert program.state == "running", program.last_error
        assert program.startup["sandbox"].startswith(f"sandboxed (Landlock ABI {ABI}): var/ hidden")
        wait_until(lambda: report.exists() and report.stat().st_size, timeout=10)
        met = json.loads(report.read_text())
        assert met["read the secret key"] == "PermissionError"
        assert met["list var/"] == "PermissionError"
        # EACCES from Landlock, or EROFS first from the mount namespace of the portal's own user.
        assert met["write the portal's code"] in ("PermissionError", "OSError") and not evil.exists()
        assert met["signal the portal"] == "PermissionError"
        assert met["read the portal's environ"] == "PermissionError"
        # As a gateway's: the rest of the host is writable where its user may write.
        assert met["write elsewhere"] == "ok" and (shared / "work.txt").read_text() == "done"
    finally:
        control.request(program, "stop", operator)
        wait_state(program, {"stopped"})
