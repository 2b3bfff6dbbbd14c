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


def test_a_frame_one_byte_over_the_limit_is_refused_from_its_prefix_before_its_body_is_read():
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(2)  # were the body awaited, recv() would time out instead of refusing
        fs = P.FrameSocket(b, max_frame=1024)
        a.sendall(struct.pack("!I", 1024) + b"y" * 1024)
        assert bytes(fs.recv()) == b"y" * 1024  # exactly at the limit: accepted
        a.sendall(struct.pack("!I", 1025))
        with pytest.raises(P.ProtocolError, match="frame of 1025 bytes exceeds the limit of 1024 bytes"):
            fs.recv()
        a.sendall(b"z" * 1025)
        assert b.recv(4096) == b"z" * 1025, "the refused frame's body must still be unread"


def test_a_drained_buffer_is_read_from_its_front_and_given_back_after_a_large_frame():
    a, b = socket.socketpair()
    with a, b:
        fs = P.FrameSocket(b)
        for i in range(5000):  # 5000 frames of 40 bytes would walk 200 KB through a 64 KiB buffer
            body = i.to_bytes(4, "big") * 10
            a.sendall(struct.pack("!I", len(body)) + body)
            assert bytes(fs.recv()) == body
        assert len(fs._buf) == 65536 and fs._start == fs._end
        big = b"B" * (3 * 1024 * 1024)
        t = threading.Thread(target=a.sendall, args=(struct.pack("!I", len(big)) + big + struct.pack("!I", 2) + b"ok",))
        t.start()
        assert bytes(fs.recv()) == big
        assert bytes(fs.recv()) == b"ok"
        t.join()
        a.sendall(struct.pack("!I", 3) + b"end")
        assert bytes(fs.recv()) == b"end"
        assert len(fs._buf) == 65536, "drained after a large frame: the buffer goes back to its first size"


def codec_pair() -> tuple[socket.socket, P.Codec]:
    a, b = socket.socketpair()
    return a, P.Codec(P.FrameSocket(b))


def test_a_frame_holding_two_values_is_refused():
    a, codec = codec_pair()
    with a, codec.fs.sock:
        body = P.msgpack.packb([0, 1, None, P.OP_PING]) + P.msgpack.packb(7)
        a.sendall(P.frame_bytes(body))
        with pytest.raises(P.ProtocolError, match="frame holds more than one value"):
            codec.recv_message()


@pytest.mark.parametrize("body", [b"", b"\xc1", b"\x93\x00\x01", b"\xa5ab"])
def test_an_empty_truncated_or_invalid_frame_is_undecodable(body):
    a, codec = codec_pair()
    with a, codec.fs.sock:
        a.sendall(P.frame_bytes(body))
        with pytest.raises(P.ProtocolError, match="undecodable frame"):
            codec.recv_message()


def test_messages_decode_one_per_frame_back_to_back_in_one_read():
    a, codec = codec_pair()
    with a, codec.fs.sock:
        msgs = [[0, i, None, P.OP_PING, "x" * i, (1, 2), 2**70] for i in range(50)]
        a.sendall(b"".join(P.frame_bytes(P.msgpack.packb(m, use_bin_type=True, default=codec._default,
                                                         strict_types=True)) for m in msgs))
        for m in msgs:
            assert codec.recv_message() == m


def test_a_callback_toggles_only_the_receive_timeout():
    a, b = socket.socketpair()
    with a, b:
        P.set_recv_timeout(b, 3600)
        timeval = struct.Struct("ll")
        assert timeval.unpack(b.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval.size)) == (3600, 0)
        P.set_wait_timeout(b, 0)
        assert timeval.unpack(b.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval.size)) == (0, 0)
        assert timeval.unpack(b.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval.size)) == (3600, 0)
        P.set_wait_timeout(b, 1.5)
        assert timeval.unpack(b.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval.size)) == (1, 500000)
        assert b.gettimeout() is None  # still a blocking socket: no poll() before each read


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
