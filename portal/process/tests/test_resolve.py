"""Resolving a server name with a deadline (checks.resolve_host), for the start path and the forms."""

import time

import pytest

from portal.process.checks import ResolveError, _unresolved, check_host_resolves, resolve_host


def test_resolve_host_answers_at_once_for_addresses_and_names():
    assert resolve_host("127.0.0.1") == {"127.0.0.1"}
    assert "127.0.0.1" in resolve_host("localhost")
    assert check_host_resolves("localhost") is None and check_host_resolves("0.0.0.0") is None
    with pytest.raises(ResolveError) as caught:
        resolve_host("no.such.host.invalid")
    assert caught.value.definite and caught.value.host == "no.such.host.invalid"


def test_a_name_service_that_does_not_answer_gives_up_within_the_timeout():
    # A resolver that hangs, as getaddrinfo does when the name server is unreachable
    # (this machine's resolver answers at once, so the hang is played by a sleep).
    def hanging(host: str) -> set[str]:
        time.sleep(30)
        return set()

    started = time.monotonic()
    with pytest.raises(ResolveError) as caught:
        resolve_host("gateway.example", timeout=0.5, resolver=hanging)
    assert time.monotonic() - started < 2
    assert not caught.value.definite and "no answer from the name service within 0.5 s" in str(caught.value)
    failure = _unresolved(caught.value)
    assert failure.code == "resolver-unavailable" and "gateway.example" in failure.message
