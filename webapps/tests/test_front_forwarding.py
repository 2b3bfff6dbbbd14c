"""The address an application is told is its client's: the front's peer, never one the client claims.

Both fronts send one address in X-Forwarded-For. An application's engine trusts the front's
headers (uvicorn takes the first address of the list), so a list the client began would let it
choose its own address. Behind an operator's own proxy (``--trusted-proxy``,
PORTAL_APPS_TRUSTED_PROXIES) the right-most address that is not a trusted proxy is the client,
and that proxy's X-Forwarded-Proto is believed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.launcher import trusted_proxies
from webapps.front.forwarding import client_address, forwarded_proto, parse_trusted
from webapps.runtime.engines import AppRun
from webapps.tests.front_helpers import FRONTS, RunningFront
from webapps.tests.runtime_helpers import ASGI_APP, serve_python, short_dir, start_app


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    path = short_dir("fwd")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def uvicorn_app(base: Path) -> Iterator[str]:
    """The bare ASGI app under uvicorn as the portal runs it (``--forwarded-allow-ips *``)."""
    code = base / "code"
    code.mkdir()
    (code / "bare.py").write_text(ASGI_APP)
    app = start_app(AppRun(mount="/bare", directory=str(code), module="bare", protocol="asgi", engine="uvicorn",
                           python=serve_python(), socket=str(base / "run" / "app.sock")), base / "run")
    try:
        yield app.app.socket
    finally:
        app.stop()


def start_front(kind: str, directory: Path, sock: str, trusted: str = "") -> RunningFront:
    front = RunningFront(kind, directory, trusted_proxies=trusted)
    front.start([{"path": "/bare", "socket": sock, "protocol": "asgi"}])
    return front


@pytest.mark.parametrize("kind", FRONTS)
def test_a_client_cannot_choose_the_address_a_uvicorn_app_sees(kind: str, uvicorn_app: str, tmp_path: Path) -> None:
    front = start_front(kind, tmp_path, uvicorn_app)
    try:
        for claimed in ("203.0.113.7", "203.0.113.7, 198.51.100.4", "unknown"):
            status, _, body = front.get("/bare/whoami", {"X-Forwarded-For": claimed,
                                                         "X-Forwarded-Proto": "https"})
            assert (status, body) == (200, "http 127.0.0.1"), f"{kind}, X-Forwarded-For: {claimed}: {body}"
    finally:
        front.stop()


# The test's client connects from 127.0.0.1: declared a trusted proxy, its X-Forwarded-For counts.
CHAINS = [
    ("203.0.113.9, 198.51.100.4", "198.51.100.4"),  # the right-most hop that is not a proxy of ours
    ("203.0.113.9, 127.0.0.5", "203.0.113.9"),  # 127.0.0.5 is one of ours: one hop further left
    ("203.0.113.9", "203.0.113.9"),
]


@pytest.mark.parametrize("kind", FRONTS)
def test_behind_a_trusted_proxy_the_client_is_the_first_untrusted_hop(kind: str, uvicorn_app: str,
                                                                      tmp_path: Path) -> None:
    front = start_front(kind, tmp_path, uvicorn_app, trusted="127.0.0.0/8")
    try:
        for sent, client in CHAINS:
            status, _, body = front.get("/bare/whoami", {"X-Forwarded-For": sent})
            assert (status, body) == (200, f"http {client}"), f"{kind}, X-Forwarded-For: {sent}: {body}"
        # Without the header, the proxy itself is the client.
        assert front.get("/bare/whoami")[2] == "http 127.0.0.1"
        # A trusted proxy that terminated TLS says so; the app then builds https links.
        assert front.get("/bare/whoami", {"X-Forwarded-Proto": "https"})[2] == "https 127.0.0.1"
        assert front.get("/bare/whoami", {"X-Forwarded-Proto": "gopher"})[2] == "http 127.0.0.1"
    finally:
        front.stop()


def test_the_scheme_rule() -> None:
    trusted = parse_trusted(["10.0.0.0/8"])
    assert forwarded_proto("10.1.1.1", b"https", trusted, b"http") == b"https"
    assert forwarded_proto("10.1.1.1", b"HTTPS", trusted, b"http") == b"https"
    assert forwarded_proto("10.1.1.1", b"javascript", trusted, b"http") == b"http"
    assert forwarded_proto("192.0.2.1", b"https", trusted, b"http") == b"http"  # not a proxy of ours
    assert forwarded_proto("10.1.1.1", b"https", (), b"http") == b"http"


def test_the_client_address_rule() -> None:
    trusted = parse_trusted(["10.0.0.0/8", "::1"])
    assert client_address("192.0.2.1", [b"203.0.113.9"], trusted) == "192.0.2.1"  # not a proxy of ours
    assert client_address("10.1.1.1", [b"203.0.113.9, 10.2.2.2"], trusted) == "203.0.113.9"
    assert client_address("10.1.1.1", [b"203.0.113.9", b"198.51.100.4"], trusted) == "198.51.100.4"
    assert client_address("::1", [b"2001:db8::7"], trusted) == "2001:db8::7"
    # A hop that is no address ends the walk: nothing left of it can be vouched for.
    assert client_address("10.1.1.1", [b"203.0.113.9, junk"], trusted) == "10.1.1.1"
    assert client_address("10.1.1.1", [b"10.3.3.3, 10.2.2.2"], trusted) == "10.3.3.3"
    assert client_address("10.1.1.1", [], trusted) == "10.1.1.1"
    assert client_address("10.1.1.1", [b"203.0.113.9"], ()) == "10.1.1.1"


def test_a_wrong_trusted_proxy_is_refused_with_how_to_write_one() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300' is not an IP address or network.*10\.0\.0\.0/8"):
        parse_trusted(["127.0.0.1", "10.0.0.300"])
    with pytest.raises(ValueError, match=r"PORTAL_APPS_TRUSTED_PROXIES: 'proxy\.example' is not an IP address"):
        trusted_proxies({"PORTAL_APPS_TRUSTED_PROXIES": "127.0.0.1, proxy.example"})
    assert trusted_proxies({"PORTAL_APPS_TRUSTED_PROXIES": " 127.0.0.1 ,10.0.0.0/8,"}) == ["127.0.0.1", "10.0.0.0/8"]
    assert trusted_proxies({}) == []
