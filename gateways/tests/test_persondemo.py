"""examples/persondemo/run.py against a real server with a passphrase: the seed's exact output."""

from __future__ import annotations

import subprocess
import sys

from gateways.tests.conftest import ROOT, start_gateway_server

EXPECTED = "Default values: name: Tom, age: 5\nChanged values: name: George, age: 99, employer: InterSystems\n"


def test_run_py_prints_the_seed_output_with_a_passphrase_file(tmp_path):
    secret = tmp_path / "passphrase"
    secret.write_text("PersonDemo passphrase\n")
    server = start_gateway_server(tmp_path, "--passphrase-file", str(secret))
    try:
        out = subprocess.run(
            [sys.executable, str(ROOT / "examples/persondemo/run.py"), "--host", server.host, "--port",
             str(server.port), "--passphrase-file", str(secret)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == EXPECTED
        wrong = tmp_path / "wrong"
        wrong.write_text("not it")
        bad = subprocess.run(
            [sys.executable, str(ROOT / "examples/persondemo/run.py"), "--port", str(server.port),
             "--passphrase-file", str(wrong)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
        )
        assert bad.returncode == 1 and "authentication failed" in bad.stderr
        assert "PersonDemo passphrase" not in server.log_text()
    finally:
        assert server.stop() == 0
