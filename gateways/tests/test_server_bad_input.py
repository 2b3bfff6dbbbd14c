"""Bad input gets a clear error (where one can be sent) and a log line; the server goes on."""

from __future__ import annotations

import os
import socket
import struct
import threading

import msgpack
import pytest

from gateways.client import ConnectionLost, RemoteError, connect
from gateways.protocol import (
    KIND_AUTH,
    KIND_ERROR,
    KIND_REFUSED,
    KIND_REQUEST,
    KIND_WELCOME,
    OP_PING,
    PROTOCOL_VERSION,
)
from gateways.tests.abuse_helpers import read_frame, send_frame


def raw_session(server) -> socket.socket:
    """A raw socket that has completed the no-passphrase handshake."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    read_frame(sock)  # hello
    send_frame(sock, msgpack.packb([KIND_AUTH, {"protocol": PROTOCOL_VERSION}]))
    kind, _ = msgpack.unpackb(read_frame(sock))
    assert kind == KIND_WELCOME
    return sock


def assert_closed(sock: socket.socket) -> None:
    sock.settimeout(5)
    try:
        assert sock.recv(1) == b""
    except ConnectionResetError:
        pass


def test_random_bytes_before_the_handshake_close_only_that_connection(gateway_server):
    with connect(gateway_server.host, gateway_server.port) as gw:
        sock = socket.create_connection((gateway_server.host, gateway_server.port), timeout=10)
        read_frame(sock)
        sock.sendall(b"\xff\xff\xff\xff" + os.urandom(64))
        msg = msgpack.unpackb(read_frame(sock))
        assert msg[0] == KIND_ERROR and "exceeds the limit" in msg[4]
        assert_closed(sock)
        sock.close()
        assert gw.ping()
    gateway_server.wait_for_log("exceeds the limit")


def test_an_oversized_frame_is_refused_with_an_error_and_the_connection_closed(gateway_server):
    sock = raw_session(gateway_server)
    sock.sendall(struct.pack("!I", 2**31))  # announces 2 GiB, sends nothing
    msg = msgpack.unpackb(read_frame(sock))
    assert msg[0] == KIND_ERROR and "exceeds the limit" in msg[4]
    assert_closed(sock)
    sock.close()
    with connect(gateway_server.host, gateway_server.port) as gw:
        assert gw.ping()


def test_undecodable_frame_content_gets_a_protocol_error(gateway_server):
    sock = raw_session(gateway_server)
    send_frame(sock, b"\xc1\xc1\xc1")  # 0xc1 is never valid msgpack
    msg = msgpack.unpackb(read_frame(sock))
    assert msg[0] == KIND_ERROR and msg[3] == "ProtocolError"
    assert_closed(sock)
    sock.close()
    gateway_server.wait_for_log("protocol error")


def test_a_truncated_frame_then_hang_up_is_logged_and_harmless(gateway_server):
    sock = raw_session(gateway_server)
    sock.sendall(struct.pack("!I", 100) + b"\x94\x00")
    sock.close()
    gateway_server.wait_for_log("closed mid-frame")
    with connect(gateway_server.host, gateway_server.port) as gw:
        assert gw.ping()


def test_an_unknown_operation_is_an_error_and_the_connection_stays_usable(gateway_server):
    sock = raw_session(gateway_server)
    send_frame(sock, msgpack.packb([KIND_REQUEST, 7, None, 31]))
    msg = msgpack.unpackb(read_frame(sock))
    assert msg[:2] == [KIND_ERROR, 7] and "unknown operation" in msg[4]
    send_frame(sock, msgpack.packb([KIND_REQUEST, 8, None, OP_PING]))
    assert msgpack.unpackb(read_frame(sock))[3] == "pong"
    sock.close()


def test_a_call_on_a_released_reference_is_a_reference_error(gateway_connection):
    car = gateway_connection.new("gwsample.Car")
    target = car._gw_target
    del car
    gateway_connection.ping()  # delivers the release
    from gateways.protocol import OP_CALL

    with pytest.raises(RemoteError) as info:
        gateway_connection.request(OP_CALL, target, "honk", [], None)
    assert info.value.remote_type == "ReferenceError"
    assert "released" in info.value.remote_message
    assert gateway_connection.ping()


def test_a_class_path_that_does_not_exist_is_a_file_not_found_error(gateway_connection, gateway_server):
    with pytest.raises(RemoteError) as info:
        gateway_connection.add_to_class_path("/no/such/dir/Module.py")
    assert info.value.remote_type == "FileNotFoundError"
    assert "/no/such/dir/Module.py" in info.value.remote_message
    gateway_server.wait_for_log("op=add_class_path: FileNotFoundError")


def test_a_class_that_cannot_be_imported_is_reported(gateway_connection):
    with pytest.raises(RemoteError) as info:
        gateway_connection.new("no_such_module_xyz.Thing")
    assert info.value.remote_type == "ModuleNotFoundError"
    with pytest.raises(RemoteError) as info:
        gateway_connection.new("gwbroken.Thing")
    assert "module_that_does_not_exist_anywhere" in info.value.remote_message
    with pytest.raises(RemoteError) as info:
        gateway_connection.new("gwsample.NoSuchClass")
    assert info.value.remote_type == "AttributeError"
    with pytest.raises(RemoteError) as info:
        gateway_connection.new("gwsample.for_each")
    assert info.value.remote_type == "TypeError"
    with pytest.raises(RemoteError) as info:
        gateway_connection.new("not a name")
    assert info.value.remote_type == "ValueError"


def test_a_client_that_vanishes_mid_call_leaves_the_server_serving(gateway_server, gateway_sample_dir):
    gw = connect(gateway_server.host, gateway_server.port)
    gw.add_to_class_path(str(gateway_sample_dir))
    errors: list = []

    def call() -> None:
        try:
            gw.invoke("gwsample", "sleep_then", 0.5, "late")
        except ConnectionLost as exc:
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    gw.sock.shutdown(socket.SHUT_RDWR)  # the client disappears while the server sleeps
    t.join(10)
    assert errors, "the waiting call should have seen the connection go"
    with connect(gateway_server.host, gateway_server.port) as other:
        assert other.ping()
    gw.close()


def test_a_frame_that_is_not_a_message_is_a_protocol_error(gateway_server):
    sock = raw_session(gateway_server)
    send_frame(sock, msgpack.packb({"hello": "world"}))
    msg = msgpack.unpackb(read_frame(sock))
    assert msg[0] == KIND_ERROR and "not a gateway message" in msg[4]
    sock.close()


def test_a_wrong_protocol_version_is_refused(gateway_server):
    sock = socket.create_connection((gateway_server.host, gateway_server.port), timeout=10)
    read_frame(sock)
    send_frame(sock, msgpack.packb([KIND_AUTH, {"protocol": 99}]))
    kind, answer = msgpack.unpackb(read_frame(sock))
    assert kind == KIND_REFUSED
    assert "unsupported protocol version 99" in answer["error"]
    sock.close()
