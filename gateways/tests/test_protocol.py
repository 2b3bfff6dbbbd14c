"""Protocol pieces without a server: verifiers, MACs, framing limits, the codec."""

from __future__ import annotations

import socket
import struct
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateways import protocol as P


def test_a_verifier_has_the_documented_shape_and_parses_back():
    v = P.make_verifier("pw", iterations=1234, salt=b"0123456789abcdef")
    prefix, iterations, _salt, _key = v.split("$")
    assert prefix == "pbkdf2_sha256" and iterations == "1234"
    it, s, k = P.parse_verifier(v)
    assert (it, s) == (1234, b"0123456789abcdef")
    assert k == P.derive_key("pw", s, 1234)
    assert P.is_verifier(v) and not P.is_verifier("pw")


def test_a_verifier_uses_a_fresh_salt_and_the_default_iterations():
    a, b = P.make_verifier("pw", iterations=10), P.make_verifier("pw", iterations=10)
    assert a != b
    assert P.make_verifier.__defaults__[0] == 200_000


@pytest.mark.parametrize("bad", ["", "pbkdf2_sha256$1$a", "md5$1$AAAA$AAAA", "pbkdf2_sha256$x$AAAA$" + "A" * 44,
                                 "pbkdf2_sha256$0$AAAA$" + "A" * 43 + "=", "pbkdf2_sha256$5$!!$AAAA"])
def test_malformed_verifiers_are_rejected(bad):
    with pytest.raises(ValueError):
        P.parse_verifier(bad)


def test_client_and_server_proofs_differ_and_depend_on_every_input():
    key = b"k" * 32
    base = P.auth_mac(key, b"client", b"hello", b"n" * 32)
    assert base != P.auth_mac(key, b"server", b"hello", b"n" * 32)
    assert base != P.auth_mac(key, b"client", b"hellO", b"n" * 32)
    assert base != P.auth_mac(key, b"client", b"hello", b"m" * 32)
    assert base != P.auth_mac(b"j" * 32, b"client", b"hello", b"n" * 32)


def test_an_oversized_length_prefix_is_refused_without_allocating_it():
    a, b = socket.socketpair()
    with a, b:
        fs = P.FrameSocket(b, max_frame=1024)
        a.sendall(struct.pack("!I", 2**32 - 1))
        with pytest.raises(P.ProtocolError, match="exceeds the limit"):
            fs.recv()
        assert len(fs._buf) == 65536


def test_frames_larger_than_the_buffer_and_split_across_reads_arrive_whole():
    a, b = socket.socketpair()
    with a, b:
        fs = P.FrameSocket(b)
        big = bytes(range(256)) * 1000
        frames = [b"x", big, b"", b"tail"]
        data = b"".join(struct.pack("!I", len(f)) + f for f in frames)

        def feed():
            for i in range(0, len(data), 777):
                a.sendall(data[i:i + 777])

        t = threading.Thread(target=feed)
        t.start()
        got = [bytes(fs.recv()) for _ in frames]
        t.join()
        assert got == frames
        a.close()
        with pytest.raises(P.ConnectionLost):
            fs.recv()


def endpoint_pair():
    a, b = socket.socketpair()
    return P.Endpoint(a), P.Endpoint(b)


def serve_in_thread(ep: P.Endpoint) -> threading.Thread:
    def loop():
        try:
            while True:
                msg = ep.recv_message()
                if msg[2]:
                    ep._release(msg[2])
                ep.serve_one(msg)
        except P.GatewayError:
            pass

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=100, deadline=None)
@given(value=values)
def test_plain_values_round_trip_by_value_with_tuples_kept(value):
    client, server = endpoint_pair()
    serve_in_thread(server)
    server.objects[1000] = lambda v: v
    try:
        assert client.request(P.OP_CALL, 1000, None, [value], None) == value
    finally:
        client.close()
        server.close()


def test_other_objects_go_by_reference_and_are_released_with_the_next_message():
    client, server = endpoint_pair()
    serve_in_thread(server)

    class Thing:
        def hello(self):
            return "hi"

    server.objects[1000] = Thing
    try:
        thing = client.request(P.OP_CALL, 1000, None, [], None)
        assert isinstance(thing, P.Proxy) and thing.hello() == "hi"
        assert len(server.objects) == 2
        del thing
        assert client.pending_releases
        client.request(P.OP_PING)
        assert len(server.objects) == 1
    finally:
        client.close()
        server.close()


def test_a_remote_error_is_also_the_matching_builtin_exception():
    err = P.make_remote_error("KeyError", "'x'", "tb")
    assert isinstance(err, KeyError) and isinstance(err, P.RemoteError)
    assert str(err).startswith("KeyError: 'x'") and "tb" in str(err)
    plain = P.make_remote_error("mymod.Custom", "m", "")
    assert type(plain) is P.RemoteError and str(plain) == "mymod.Custom: m"
