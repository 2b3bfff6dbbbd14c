"""Readiness probes: HTTP over a unix socket, probes named by import path, the legacy gateway kind."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from portal.process import keeper
from portal.process.probes import probe_once
from portal.process.spec import Spec
from portal.process.tests.conftest import PROGRAMS, server_argv

ROOT = Path(__file__).resolve().parents[3]


def gunicorn_argv(sock: Path) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"unix:{sock}", "--workers", "1",
            "--chdir", str(PROGRAMS), "wsgi_app:app"]


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    path = tmp_path / "app.sock"
    assert len(str(path)) < 100, "a unix socket path must stay under 108 bytes"
    return path


def test_a_unix_http_probe_waits_for_gunicorn_on_a_unix_socket(run_dir, sock_path):
    spec = Spec(name="web", argv=gunicorn_argv(sock_path), cwd=str(ROOT), init_timeout=20, stop_timeout=5,
                probe={"kind": "unix-http", "socket": str(sock_path), "path": "/", "timeout": 1.0})
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"running", "fatal", "exited"}, timeout=30)
    assert status["state"] == "running", status["error"]
    probe = {"kind": "unix-http", "socket": str(sock_path)}
    # Any answer below 500 is ready; a server error is not.
    assert probe_once({**probe, "path": "/status/404"}, timeout=2)
    assert not probe_once({**probe, "path": "/status/500"}, timeout=2)
    assert not probe_once({**probe, "path": "/status/503"}, timeout=2)
    assert keeper.request_stop(run_dir, timeout=15)
    assert not probe_once(probe, timeout=1)  # gone with its server


def test_a_unix_http_probe_fails_without_a_socket(tmp_path):
    assert not probe_once({"kind": "unix-http", "socket": str(tmp_path / "none.sock")}, timeout=0.5)


def test_a_unix_http_probe_gives_up_on_a_listener_that_never_answers(sock_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(sock_path))
        listener.listen()
        started = time.monotonic()
        assert not probe_once({"kind": "unix-http", "socket": str(sock_path)}, timeout=0.3)
        assert time.monotonic() - started < 2.0


def test_a_unix_http_probe_is_not_fooled_by_a_listener_that_speaks_no_http(sock_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(sock_path))
        listener.listen()

        def babble() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"hello, this is not HTTP\r\n\r\n")

        thread = threading.Thread(target=babble, daemon=True)
        thread.start()
        assert not probe_once({"kind": "unix-http", "socket": str(sock_path)}, timeout=2)
        thread.join(5)


def test_a_unix_http_probe_reads_a_status_line_sent_in_pieces(sock_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(sock_path))
        listener.listen()
        requests: list[bytes] = []

        def answer(pieces: list[bytes]) -> None:
            conn, _ = listener.accept()
            with conn:
                requests.append(conn.recv(1024))
                for piece in pieces:
                    conn.sendall(piece)
                    time.sleep(0.05)

        for pieces, ready in (([b"HTTP/1.1 4", b"04 Not Found\r\n", b"\r\n"], True),
                              ([b"HTTP/1.0 503", b"\r\n\r\n"], False), ([b"HTTP/1.1 200"], False)):
            thread = threading.Thread(target=answer, args=(pieces,), daemon=True)
            thread.start()
            assert probe_once({"kind": "unix-http", "socket": str(sock_path), "path": "/x/"}, timeout=2) is ready
            thread.join(5)
        assert requests[0] == b"GET /x/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def test_the_unix_http_probe_leaves_http_client_unimported(sock_path):
    # http.client (and ssl) cost a keeper 80-120 ms of CPU on a busy machine, just after it starts the server.
    code = ("import sys; from portal.process.probes import probe_once; "
            f"probe_once({{'kind': 'unix-http', 'socket': {str(sock_path)!r}}}, 0.2); "
            "print(sorted(m for m in ('http.client', 'ssl', 'email.parser') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_import_probe_calls_the_function_it_names(tmp_path):
    flag = tmp_path / "ready"
    probe = {"kind": "import", "path": "portal.process.tests.probe_functions:ready_when_the_file_exists",
             "file": str(flag)}
    assert not probe_once(probe)
    flag.touch()
    assert probe_once(probe)


def test_an_import_probe_that_raises_counts_as_not_ready():
    assert not probe_once({"kind": "import", "path": "portal.process.tests.probe_functions:broken"})


def test_a_start_whose_import_probe_cannot_be_imported_fails_with_a_message(run_dir, port, tag):
    spec = Spec(name="p", argv=server_argv(port, tag), max_quick_failures=1,
                probe={"kind": "import", "path": "no_such_package.probes:ready"})
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"fatal", "running"}, timeout=10)
    assert status["state"] == "fatal"
    assert "no_such_package.probes:ready cannot be imported" in status["error"]
    assert "fix the probe's path" in status["error"]


def test_a_gateway_is_probed_by_import_path_with_its_host_and_port(run_dir, port, tag):
    from gateways.protocol import make_verifier

    verifier = make_verifier("correct horse", iterations=1000)
    spec = Spec(
        name="gateway",
        argv=[sys.executable, "-m", "gateways.server", "--host", "127.0.0.1", "--port", str(port),
              "--log-file", str(run_dir / "gateway.log")],
        env={"GATEWAY_PASSPHRASE": verifier, "TEST_TAG": tag}, secret_env=["GATEWAY_PASSPHRASE"], cwd=str(ROOT),
        probe={"kind": "import", "path": "gateways.probe:ping", "host": "localhost", "port": port,
               "verifier": verifier},
        stop_timeout=3.0,
    )
    keeper.launch(spec, run_dir)
    status = keeper.wait_for(run_dir, {"running", "fatal", "exited"}, timeout=10)
    assert status["state"] == "running", status["error"]
    assert verifier not in (run_dir / "events.jsonl").read_text() + (run_dir / "keeper.log").read_text()
    # Its port is checked like a tcp probe's: a second start on it is refused with the holder named.
    other = run_dir.parent / "other"
    keeper.launch(Spec(name="second", argv=server_argv(port, tag), max_quick_failures=1, probe=spec.probe), other)
    second = keeper.wait_for(other, {"fatal", "running"}, timeout=10)
    assert second["state"] == "fatal" and f"port {port} on 127.0.0.1 is already in use" in second["error"]
    assert keeper.request_stop(run_dir, timeout=10)


def test_an_import_probe_of_a_gateway_is_not_fooled_by_a_plain_tcp_listener(port):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not probe_once({"kind": "import", "path": "gateways.probe:ping", "host": "127.0.0.1",
                               "port": port}, timeout=0.5)


@pytest.mark.parametrize("probe, message", [
    ({"kind": "import", "path": "no colon here"}, "package.module:function"),
    ({"kind": "import"}, "package.module:function"),
    ({"kind": "unix-http"}, "socket"),
    ({"kind": "unix-http", "socket": "/run/x.sock", "path": "status"}, "must start with /"),
    ({"kind": "smoke-signals"}, "is not one of"),
])
def test_a_probe_that_cannot_be_used_is_refused_with_a_message(probe, message):
    with pytest.raises(ValueError, match=message):
        Spec(name="p", argv=["true"], probe=probe)


def test_the_process_core_never_imports_gateways():
    code = ("import sys\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "import portal.process.keeper, portal.process.daemon, portal.process.checks\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'gateways'))\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
