"""The gateway server under abuse: guessing, forged log lines, connection floods, slow and idle
peers, frames announced but never sent. Real servers, real sockets, many loopback addresses."""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import psutil
import pytest

from conftest import wait_until
from gateways.client import GatewayError, ProtocolError, RemoteError, connect
from gateways.protocol import KIND_AUTH, KIND_REFUSED, KIND_WELCOME, OP_GETATTR, PROTOCOL_VERSION
from gateways.tests.abuse_helpers import Guessers, connect_from, read_frame, send_frame
from gateways.tests.conftest import ROOT, TEST_PASSPHRASE, TEST_VERIFIER, GatewayProcess, start_gateway_server

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) ")
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


@pytest.fixture
def guarded(tmp_path):
    server = start_gateway_server(tmp_path, env_passphrase=TEST_VERIFIER)
    yield server
    server.stop()


def stopped_log(server: GatewayProcess) -> str:
    """The log once the server has stopped, so the bursts it was still counting are written."""
    assert server.stop() == 0
    return server.log_text()


# -- guessing the passphrase ----------------------------------------------------------------------


def test_200_parallel_guessers_get_a_few_guesses_a_second_not_hundreds(guarded):
    with Guessers(guarded.host, guarded.port, ["127.0.0.2"], parallel=200) as attack:
        time.sleep(4)
    # Before the limit: 242 checked guesses a second. Now 5 at once, then one every 2 s.
    assert attack.counts["guess"] <= 5 + 0.5 * attack.elapsed + 1, attack.counts
    assert attack.per_second() <= 2.5
    assert attack.counts["limited"] > 100, "the other attempts must be refused, not silently dropped"


def test_a_rate_limited_address_is_told_why_and_when_to_come_back(guarded):
    with Guessers(guarded.host, guarded.port, ["127.0.0.3"], parallel=20) as attack:
        wait_until(lambda: attack.counts["limited"] > 0, timeout=10)
    from gateways.client import AuthenticationError

    sock = connect_from("127.0.0.3", guarded.host, guarded.port)
    hello = read_frame(sock)
    send_frame(sock, msgpack.packb([KIND_AUTH, {"protocol": PROTOCOL_VERSION, "nonce": b"n" * 32, "mac": b"m"}]))
    kind, answer = msgpack.unpackb(read_frame(sock))
    sock.close()
    assert hello and kind == KIND_REFUSED
    assert re.match(r"authentication refused: too many failed attempts from 127\.0\.0\.3; try again in \d+ s$",
                    answer["error"]), answer
    assert issubclass(AuthenticationError, GatewayError)


def test_a_correct_client_gets_in_while_another_address_hammers(guarded):
    with Guessers(guarded.host, guarded.port, ["127.0.0.2"], parallel=200) as attack:
        wait_until(lambda: attack.counts["limited"] > 50, timeout=10)
        for _ in range(5):
            with connect(guarded.host, guarded.port, verifier=TEST_VERIFIER) as gw:
                assert gw.ping()
    assert attack.counts["guess"] <= 5 + 0.5 * attack.elapsed + 1


def test_many_addresses_together_are_limited_per_server_and_known_clients_still_get_in(guarded):
    with connect(guarded.host, guarded.port, verifier=TEST_VERIFIER) as gw:  # 127.0.0.1 is known now
        assert gw.ping()
    sources = [f"127.0.0.{i}" for i in range(10, 30)]
    with Guessers(guarded.host, guarded.port, sources, parallel=200) as attack:
        time.sleep(4)
        with connect(guarded.host, guarded.port, verifier=TEST_VERIFIER) as gw:
            assert gw.ping()
    # 20 addresses alone would get 5 each at once; the server's own bucket allows 10, then 1 a second.
    assert attack.counts["guess"] <= 10 + 1.0 * attack.elapsed + 2, attack.counts


def test_failed_handshakes_are_logged_once_per_burst_not_once_per_try(guarded):
    with Guessers(guarded.host, guarded.port, ["127.0.0.2"], parallel=50) as attack:
        wait_until(lambda: sum(attack.counts.values()) > 300, timeout=20)
    text = stopped_log(guarded)
    about = [line for line in text.splitlines() if "127.0.0.2" in line]
    assert len(about) <= 8, "\n".join(about[:12])  # first lines and sums, not one per try
    assert "authentication failed peer=127.0.0.2:" in text
    summed = sum(int(m) for m in re.findall(r"(\d+) (?:failed handshakes|refused connections) from 127\.0\.0\.2", text))
    # The first of each kind is its own line; every other attempt is in a sum.
    assert summed + 2 >= sum(attack.counts.values()) - attack.counts["error"], (summed, attack.counts)


# -- forged log lines -----------------------------------------------------------------------------


def test_names_with_newlines_and_escapes_are_logged_as_one_escaped_line_each(tmp_path, gateway_sample_dir):
    server = start_gateway_server(tmp_path)
    forged = "x\n2026-01-01 00:00:00,000 WARNING forged line\r\x1b[31mred\x1b[0m\u2028\x85"
    with connect(server.host, server.port) as gw:
        gw.add_to_class_path(str(gateway_sample_dir))
        car = gw.new("gwsample.Car")
        for _ in range(3):
            with pytest.raises(RemoteError):
                gw.request(OP_GETATTR, car._gw_target, forged)
        with pytest.raises(RemoteError):
            gw.invoke("gwsample", forged)
    # A wrong protocol "version" carrying a newline, before authentication.
    sock = socket.create_connection((server.host, server.port), timeout=10)
    read_frame(sock)
    send_frame(sock, msgpack.packb([KIND_AUTH, {"protocol": "1\n2026-01-01 00:00:00,000 INFO forged"}]))
    read_frame(sock)
    sock.close()
    text = stopped_log(server)
    lines = text.splitlines()
    assert lines and all(LINE.match(line) or line.startswith("listening on") for line in lines), text
    assert not CONTROL.search(text.replace("\n", "")), "raw control characters in the log"
    forged_lines = [line for line in lines if "forged" in line]
    assert len(forged_lines) == 5, forged_lines
    assert all("request error" in line or "protocol version" in line for line in forged_lines)
    assert "\\x1b[31mred" in text and "\\n2026-01-01" in text and "\\u2028" in text


# -- connection floods ----------------------------------------------------------------------------


def test_500_idle_sockets_keep_the_thread_count_bounded_and_a_client_still_gets_in(tmp_path):
    server = start_gateway_server(tmp_path)
    idle: list[socket.socket] = []
    try:
        for i in range(500):
            idle.append(connect_from(f"127.0.0.{2 + i % 32}", server.host, server.port))
        proc = psutil.Process(server.proc.pid)
        assert proc.num_threads() <= 3, "an unauthenticated connection must not hold a thread"
        # The handshake slots are full of idle peers; once they have idled for a second (EVICT_AFTER)
        # a client that answers at once takes the oldest one's place.
        gw = wait_until(lambda: _try_connect(server), timeout=10)
        assert gw.ping()
        gw.close()
        assert proc.num_threads() <= 3
        first_frames = [msgpack.unpackb(read_frame(s)) for s in idle]
        refused = [answer["error"] for kind, answer in first_frames if kind == KIND_REFUSED]
        # 64 handshake slots (more if idle ones were evicted on a slow machine): the rest are told why.
        assert len(refused) >= 100, f"{len(refused)} refusals"
        assert all(r.startswith("too many") for r in refused), set(refused)
    finally:
        for s in idle:
            s.close()
        server.stop()


def test_300_idle_sockets_from_a_clients_own_address_do_not_lock_it_out(tmp_path):
    server = start_gateway_server(tmp_path, env_passphrase=TEST_VERIFIER)
    idle: list[socket.socket] = []
    try:
        # Another program of this machine holds idle handshakes from 127.0.0.1, the client's address.
        for _ in range(300):
            idle.append(connect_from("127.0.0.1", server.host, server.port))
        first_frames = [msgpack.unpackb(read_frame(s)) for s in idle]
        refused = {answer["error"] for kind, answer in first_frames if kind == KIND_REFUSED}
        # The address still holds no more than its quarter of the 64 slots: the rest are told why at once.
        assert refused == {"too many unfinished handshakes from 127.0.0.1; finish or close them first"}, refused
        for s, (kind, _) in zip(idle, first_frames, strict=True):
            if kind == KIND_REFUSED:
                assert s.recv(1) == b""  # and closed by the server (right after the refusal it sent)
        proc = psutil.Process(server.proc.pid)
        in_handshake = [c for c in proc.net_connections("tcp")
                        if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port]
        assert len(in_handshake) <= 16 and proc.num_threads() <= 3
        # The client, at once and within its 5 s: when its address is at its cap, its connection
        # closes the address's oldest stalled handshake (open a second and still unfinished),
        # and the client tries again after a refusal while its timeout lasts.
        started = time.monotonic()
        with connect(server.host, server.port, passphrase=TEST_PASSPHRASE, timeout=5) as gw:
            assert gw.ping() and gw.version()["pid"] == server.proc.pid
        assert time.monotonic() - started < 5
        assert proc.num_threads() <= 3
        assert "handshake closed to make room for a new connection peer=127.0.0.1:" in stopped_log(server)
    finally:
        for s in idle:
            s.close()
        server.stop()


class Refuser:
    """A listener that answers every connection with one refusal, as a busy server would, and counts them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.attempts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.attempts += 1
            send_frame(sock, msgpack.packb([KIND_REFUSED, {"error": self.text}]))
            sock.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way; close() alone does not
        self.listener.close()
        self.thread.join(5)
        assert not self.thread.is_alive()


def test_the_client_tries_again_after_a_busy_refusal_until_its_timeout_and_never_after_another():
    busy = Refuser("too many unfinished handshakes from 127.0.0.1; finish or close them first")
    full = Refuser("too many connections: this server serves at most 3 at once (--max-connections); try again later")
    try:
        started = time.monotonic()
        with pytest.raises(ProtocolError, match="refused the connection: too many unfinished handshakes from 127"):
            connect("127.0.0.1", busy.port, timeout=1.5)
        took = time.monotonic() - started
        # Until its timeout (give or take the last try), with a backoff (50 ms doubling to 0.5 s):
        # a few tries, not a spin.
        assert 0.7 <= took <= 2.5, took
        assert 3 <= busy.attempts <= 10, busy.attempts
        with pytest.raises(ProtocolError, match="serves at most 3 at once"):
            connect("127.0.0.1", full.port, timeout=1.5)
        assert full.attempts == 1
    finally:
        busy.close()
        full.close()


def test_connections_beyond_max_connections_get_a_clear_refusal(tmp_path):
    server = start_gateway_server(tmp_path, "--max-connections", "3")
    try:
        held = [connect(server.host, server.port) for _ in range(3)]
        with pytest.raises(ProtocolError, match=r"too many connections: this server serves at most 3 at once"):
            connect(server.host, server.port)
        assert psutil.Process(server.proc.pid).num_threads() <= 4
        assert all(gw.ping() for gw in held)
        held.pop().close()
        gw = wait_until(lambda: _try_connect(server), timeout=5)
        assert gw.ping()
        gw.close()
        for other in held:
            other.close()
    finally:
        server.stop()


def _try_connect(server: GatewayProcess):
    try:
        return connect(server.host, server.port)
    except ProtocolError:
        return None


def test_authenticated_connections_keep_working_while_handshake_slots_are_full(tmp_path):
    server = start_gateway_server(tmp_path, "--max-handshakes", "4")
    idle = []
    try:
        with connect(server.host, server.port) as gw:
            idle = [connect_from(f"127.0.0.{i}", server.host, server.port) for i in range(2, 12)]
            for _ in range(100):
                assert gw.ping()
    finally:
        for s in idle:
            s.close()
        server.stop()


def test_the_server_survives_when_it_cannot_start_a_thread(tmp_path):
    server = start_gateway_server(tmp_path)
    try:
        proc = psutil.Process(server.proc.pid)
        soft, hard = proc.rlimit(psutil.RLIMIT_AS)
        # A thread needs its stack mapped (8 MiB by default): 2 MiB of address space to spare is not enough.
        proc.rlimit(psutil.RLIMIT_AS, (proc.memory_info().vms + 2 * 1024 * 1024, hard))
        for _ in range(4):
            with pytest.raises(ProtocolError, match="cannot start a thread"):
                connect(server.host, server.port)
        assert server.proc.poll() is None
        proc.rlimit(psutil.RLIMIT_AS, (soft, hard))
        with connect(server.host, server.port) as gw:
            assert gw.ping()
        text = stopped_log(server)
        assert text.count("cannot start a thread for a connection") == 1, text
        summed = re.findall(r"(\d+) connections refused for want of a thread or memory in the last \d+ s", text)
        assert sum(int(n) for n in summed) == 3, text
    finally:
        server.stop()


@pytest.mark.parametrize(("option", "value", "fix"), [
    ("--max-connections", "0", "give 1 to 100000"),
    ("--max-handshakes", "-1", "give 1 to 100000"),
    ("--handshake-timeout", "nan", "give 0.1 to 3600 seconds"),
    ("--idle-timeout", "0.01", "give 0 (never) or 0.1 to 2592000 seconds"),
])
def test_a_limit_out_of_range_exits_2_with_the_range_to_give(option, value, fix):
    out = subprocess.run([sys.executable, "-m", "gateways.server", "--port", "0", option, value], cwd=ROOT,
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 2
    assert f"{option} {value}" in out.stderr.replace("nan", value) and fix in out.stderr, out.stderr
    assert "listening" not in out.stdout


# -- slow and idle peers --------------------------------------------------------------------------


def test_a_handshake_dripping_one_byte_at_a_time_is_closed_at_its_deadline(tmp_path):
    server = start_gateway_server(tmp_path, "--handshake-timeout", "1")
    try:
        sock = socket.create_connection((server.host, server.port), timeout=10)
        read_frame(sock)
        started = time.monotonic()
        auth = struct.pack("!I", 100) + b"\x92" * 100
        closed_after = None
        sock.settimeout(0.25)
        for byte in auth:
            try:
                sock.sendall(bytes([byte]))
                data = sock.recv(4096)  # the refusal, then the end of the stream
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data or msgpack.unpackb(data[4:])[0] == KIND_REFUSED:
                closed_after = time.monotonic() - started
                break
        sock.close()
        assert closed_after is not None and closed_after < 3, "each byte must not restart the deadline"
        assert "handshake not completed within 1 s" in stopped_log(server)
    finally:
        server.stop()


def test_an_idle_connection_is_closed_after_the_idle_timeout(tmp_path):
    server = start_gateway_server(tmp_path, "--idle-timeout", "1")
    try:
        gw = connect(server.host, server.port)
        assert gw.ping()
        server.wait_for_log("idle for 1 s (--idle-timeout)", timeout=10)
        with pytest.raises(GatewayError):
            gw.ping()
        gw.close()
    finally:
        server.stop()


def test_a_long_call_or_a_slow_callback_is_not_idle(tmp_path, gateway_sample_dir):
    server = start_gateway_server(tmp_path, "--idle-timeout", "1")
    try:
        with connect(server.host, server.port, timeout=30) as gw:
            gw.add_to_class_path(str(gateway_sample_dir))
            assert gw.invoke("gwsample", "sleep_then", 2.0, "done") == "done"

            def slow(x):
                time.sleep(1.5)
                return x * 2

            assert gw.invoke("gwsample", "for_each", [1, 2], slow) == [2, 4]
            assert gw.ping()
        assert "idle for" not in server.log_text()
    finally:
        server.stop()


def test_the_idle_timeout_applies_again_once_a_callback_has_answered(tmp_path, gateway_sample_dir):
    server = start_gateway_server(tmp_path, "--idle-timeout", "1")
    try:
        with connect(server.host, server.port, timeout=30) as gw:
            gw.add_to_class_path(str(gateway_sample_dir))

            def slow(x):
                time.sleep(1.3)
                return x

            assert gw.invoke("gwsample", "for_each", [1], slow) == [1]
            server.wait_for_log("idle for 1 s (--idle-timeout)", timeout=10)
            with pytest.raises(GatewayError):
                gw.ping()
    finally:
        server.stop()


# -- frames announced but not sent ----------------------------------------------------------------


def test_frames_announced_but_not_sent_do_not_allocate_their_size(tmp_path):
    server = start_gateway_server(tmp_path)
    socks = []
    try:
        proc = psutil.Process(server.proc.pid)
        before = proc.memory_info().rss
        for _ in range(10):
            sock = socket.create_connection((server.host, server.port), timeout=10)
            read_frame(sock)
            send_frame(sock, msgpack.packb([KIND_AUTH, {"protocol": PROTOCOL_VERSION}]))
            assert msgpack.unpackb(read_frame(sock))[0] == KIND_WELCOME
            sock.sendall(struct.pack("!I", 64 * 1024 * 1024) + b"\x00" * 100)  # 64 MiB announced, 100 bytes sent
            socks.append(sock)
        peak = 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # before the fix RSS rose by 640 MB within milliseconds
            peak = max(peak, proc.memory_info().rss - before)
            time.sleep(0.05)
        assert peak < 64 * 1024 * 1024, f"server RSS grew by {peak / 2**20:.0f} MiB"
        with connect(server.host, server.port) as gw:
            assert gw.invoke("builtins", "len", "x" * 5_000_000) == 5_000_000  # large frames still arrive
            assert len(gw.invoke("builtins", "bytes", 5_000_000)) == 5_000_000
    finally:
        for s in socks:
            s.close()
        server.stop()


# -- malformed messages after the handshake -------------------------------------------------------


@pytest.mark.parametrize("releases", [5, True, 1.5, [[1]], [{}], ["x"]])
def test_a_malformed_release_list_is_a_protocol_error_not_an_unhandled_error(tmp_path, releases):
    server = start_gateway_server(tmp_path)
    try:
        sock = socket.create_connection((server.host, server.port), timeout=10)
        read_frame(sock)
        send_frame(sock, msgpack.packb([KIND_AUTH, {"protocol": PROTOCOL_VERSION}]))
        read_frame(sock)
        send_frame(sock, msgpack.packb([0, 1, releases, 20]))  # a ping carrying releases that are not ids
        msg = msgpack.unpackb(read_frame(sock))
        sock.close()
        assert msg[0] == 2 and msg[3] == "ProtocolError" and "releases" in msg[4], msg
        text = stopped_log(server)
        assert "unhandled error" not in text and "Traceback" not in text, text
    finally:
        server.stop()


# -- the readiness line ---------------------------------------------------------------------------


def test_listening_on_is_logged_once_when_stdout_is_the_log_file(tmp_path):
    """As the portal runs it: stdout and --log-file are the same file."""
    log = tmp_path / "gw.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateways.server", "--port", "0", "--log-file", str(log)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        line = wait_until(lambda: re.search(r"^listening on 127\.0\.0\.1:(\d+)$", log.read_text(), re.M))
        with connect("127.0.0.1", int(line.group(1))) as gw:
            assert gw.ping()
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    text = Path(log).read_text()
    assert text.count("listening on") == 1, text
    assert re.search(r"INFO started pid=\d+ python=\S+ auth=off max-connections=100", text), text
