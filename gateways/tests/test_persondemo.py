"""examples/persondemo/run.py against a real server with a passphrase: the seed's exact output."""

from __future__ import annotations

import socket
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
        assert bad.returncode == 1
        assert bad.stderr.strip() == f"run.py: authentication failed: the passphrase in {wrong} is not this gateway's."
        assert "PersonDemo passphrase" not in server.log_text()
    finally:
        assert server.stop() == 0


def test_run_py_says_which_address_refused_and_to_start_the_gateway(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples/persondemo/run.py"), "--port", str(port)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"cannot connect to 127.0.0.1:{port}" in out.stderr
    assert (f"no gateway answers on 127.0.0.1:{port}: start the gateway in the portal (Gateways → Start), "
            "or give its host and port with --host and --port.") in out.stderr


def test_run_py_without_msgpack_says_which_interpreter_to_use(tmp_path):
    """The system python3 has no msgpack: one clear message with the exact command, no traceback."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    python = bare / "bin" / "python"
    assert subprocess.run([str(python), "-c", "import msgpack"], capture_output=True).returncode != 0
    out = subprocess.run(
        [str(python), str(ROOT / "examples/persondemo/run.py"), "--port", "55001"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "lacks the module 'msgpack'" in out.stderr
    command = f"{ROOT / '.venv/bin/python'} {ROOT / 'examples/persondemo/run.py'} --port 55001"
    assert command in out.stderr


def test_run_py_says_what_is_wrong_with_a_passphrase_file_it_cannot_use(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    cases = {
        str(tmp_path / "missing"): f"run.py: cannot read the passphrase file {tmp_path / 'missing'}: No such file "
                                   "or directory; give --passphrase-file a file whose first line is the gateway's "
                                   "passphrase (or set GATEWAY_PASSPHRASE).",
        str(tmp_path): f"run.py: cannot read the passphrase file {tmp_path}: Is a directory;",
        str(empty): f"run.py: the passphrase file {empty} is empty: write the gateway's passphrase on its first line.",
        str(binary): f"run.py: the passphrase file {binary} is not UTF-8 text",
    }
    for path, said in cases.items():
        out = subprocess.run(
            [sys.executable, str(ROOT / "examples/persondemo/run.py"), "--port", "9", "--passphrase-file", path],
            capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
        )
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(said), out.stderr
        assert "Traceback" not in out.stderr
