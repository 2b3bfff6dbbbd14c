"""Random frames against a live server: it answers or closes, and keeps serving."""

from __future__ import annotations

import socket
import struct

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateways.client import connect
from gateways.protocol import KIND_AUTH, OP_SHUTDOWN, PROTOCOL_VERSION
from gateways.tests.test_server_bad_input import read_frame, send_frame

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=20,
)
ext = st.builds(msgpack.ExtType, st.integers(0, 7), st.binary(max_size=16))
op = st.integers(-2, 40).filter(lambda o: o != OP_SHUTDOWN)
message = st.builds(lambda kind, rid, rel, o, args: [kind, rid, rel, o, *args],
                    st.integers(-1, 14), st.integers(-5, 2**40), st.none() | st.lists(st.integers(-5, 99), max_size=3),
                    op, st.lists(plain | ext, max_size=5))


def _drain(sock: socket.socket) -> None:
    sock.settimeout(2)
    try:
        read_frame(sock)
    except (OSError, ConnectionError):
        pass


def _answer_or_close(sock: socket.socket) -> None:
    """The server answers the request or closes the connection; it does not leave it hanging."""
    sock.settimeout(5)
    try:
        read_frame(sock)
    except ConnectionError:  # read_frame raises ConnectionError("closed") at EOF
        pass
    except TimeoutError:
        raise AssertionError("the server neither answered the request nor closed the connection") from None


def _still_serving(server) -> None:  # type: ignore[no-untyped-def]
    """A fresh connection gets its ping answered: the example left the server working."""
    assert server.proc.poll() is None, f"the server exited with {server.proc.returncode}"
    with connect(server.host, server.port, timeout=5) as gw:
        assert gw.ping()


@FUZZ
@given(body=st.binary(max_size=200), announce_more=st.booleans())
def test_random_frames_after_the_handshake_never_stop_the_server(gateway_server, body, announce_more):
    with socket.create_connection((gateway_server.host, gateway_server.port), timeout=5) as sock:
        read_frame(sock)
        send_frame(sock, msgpack.packb([KIND_AUTH, {"protocol": PROTOCOL_VERSION}]))
        read_frame(sock)
        header = struct.pack("!I", len(body) + (7 if announce_more else 0))
        sock.sendall(header + body)
        if not announce_more:
            _drain(sock)  # a body that decodes to a stray response gets no answer, rightly
    _still_serving(gateway_server)


@FUZZ
@given(msg=message)
def test_random_well_formed_messages_get_an_answer_or_a_clean_close(gateway_server, msg):
    with socket.create_connection((gateway_server.host, gateway_server.port), timeout=5) as sock:
        read_frame(sock)
        send_frame(sock, msgpack.packb([KIND_AUTH, {"protocol": PROTOCOL_VERSION}]))
        read_frame(sock)
        send_frame(sock, msgpack.packb(msg))
        if msg[0] == 0:
            _answer_or_close(sock)
    _still_serving(gateway_server)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_instead_of_a_handshake_never_stop_the_server(gateway_server, data):
    with socket.create_connection((gateway_server.host, gateway_server.port), timeout=5) as sock:
        read_frame(sock)
        sock.sendall(data)
    _still_serving(gateway_server)


def test_the_server_still_answers_a_ping_after_the_fuzzing(gateway_server):
    # Runs after the fuzz tests above (file order); fails if any example broke the server.
    with connect(gateway_server.host, gateway_server.port) as gw:
        assert gw.ping()
    assert gateway_server.proc.poll() is None
    assert "unhandled error" not in gateway_server.log_text()
