"""Challenge-response authentication with a PBKDF2-derived HMAC key."""

from __future__ import annotations

import time

import pytest

from gateways.client import AuthenticationError, GatewayError, connect
from gateways.protocol import make_verifier
from gateways.tests.conftest import TEST_PASSPHRASE, TEST_VERIFIER


def test_the_right_passphrase_connects(gateway_server_with_passphrase):
    s = gateway_server_with_passphrase
    with connect(s.host, s.port, passphrase=TEST_PASSPHRASE) as gw:
        assert gw.ping()


def test_the_stored_verifier_connects_without_the_passphrase(gateway_server_with_passphrase):
    s = gateway_server_with_passphrase
    with connect(s.host, s.port, verifier=TEST_VERIFIER) as gw:
        assert gw.ping()


def test_a_wrong_passphrase_raises_authentication_error_after_a_delay(gateway_server_with_passphrase):
    s = gateway_server_with_passphrase
    started = time.monotonic()
    with pytest.raises(AuthenticationError):
        connect(s.host, s.port, passphrase="wrong horse")
    assert time.monotonic() - started >= 0.45
    text = s.wait_for_log("authentication failed")
    assert "wrong horse" not in text and TEST_PASSPHRASE not in text
    assert TEST_VERIFIER.split("$")[3] not in text


def test_a_verifier_made_with_another_salt_is_refused_before_sending_anything(gateway_server_with_passphrase):
    s = gateway_server_with_passphrase
    other = make_verifier(TEST_PASSPHRASE, iterations=1000)
    with pytest.raises(AuthenticationError, match="does not belong"):
        connect(s.host, s.port, verifier=other)


def test_a_missing_passphrase_raises_authentication_error(gateway_server_with_passphrase):
    s = gateway_server_with_passphrase
    with pytest.raises(AuthenticationError, match="requires a passphrase"):
        connect(s.host, s.port)


def test_a_passphrase_for_a_server_without_one_is_refused(gateway_server):
    with pytest.raises(AuthenticationError):
        connect(gateway_server.host, gateway_server.port, passphrase="anything")


def test_authentication_error_is_a_gateway_error():
    assert issubclass(AuthenticationError, GatewayError)


def test_the_other_connections_keep_working_during_a_failed_attempt(gateway_server_with_passphrase):
    s = gateway_server_with_passphrase
    with connect(s.host, s.port, verifier=TEST_VERIFIER) as gw:
        with pytest.raises(AuthenticationError):
            connect(s.host, s.port, passphrase="nope")
        assert gw.ping()


def test_an_authenticated_peer_may_shut_the_server_down(tmp_path):
    from gateways.tests.conftest import start_gateway_server

    server = start_gateway_server(tmp_path, env_passphrase=TEST_VERIFIER)
    try:
        with connect(server.host, server.port, verifier=TEST_VERIFIER) as gw:
            gw.shutdown()
        assert server.proc.wait(timeout=10) == 0
    finally:
        server.stop()
