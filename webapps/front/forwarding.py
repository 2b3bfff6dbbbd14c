"""Who the client is, as the front tells an application: one address in ``X-Forwarded-For``.

The front is the applications' only way in (their sockets are 0600 in the keepers' 0700 folders), so the
engines trust its headers: uvicorn (``--forwarded-allow-ips *``) takes the *first* address of
``X-Forwarded-For`` as the client, and so would a Flask ``ProxyFix`` that counts every hop. A front
that appends to what the client sent (the usual ``$proxy_add_x_forwarded_for``) would let any
client claim any address: ``X-Forwarded-For: 10.0.0.1`` through the front, and the app's client is
10.0.0.1. So both fronts send the one address they vouch for: their peer's, or, when the peer is
an operator's own proxy named in ``PORTAL_APPS_TRUSTED_PROXIES`` (a TLS terminator in front of the
apps port), the right-most address of its ``X-Forwarded-For`` that is not itself a trusted proxy
(what nginx's ``real_ip_recursive on`` picks). Such a proxy's ``X-Forwarded-Proto`` (``http`` or
``https``) is believed too, so that an application behind a TLS terminator knows it is served over
https (Django's CSRF origin check needs it); anyone else's is replaced by the front's own scheme.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``); ValueError saying which is wrong."""
    networks = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(
                f"trusted proxy {value!r} is not an IP address or network: give addresses such as "
                f"127.0.0.1 or 10.0.0.0/8, separated by commas"
            ) from None
    return tuple(networks)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str, forwarded_for: Sequence[bytes], trusted: Sequence[Network]) -> str:
    """The client's address: ``peer`` itself unless it is a trusted proxy (see the module's doc)."""
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.decode("latin-1").split(",")]
    client = peer
    for hop in reversed([hop for hop in hops if hop]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # not an address: what lies left of it cannot be vouched for either
        client = hop
        if not _trusted(hop, trusted):
            break
    return client


def forwarded_proto(peer: str, sent: bytes, trusted: Sequence[Network], own: bytes) -> bytes:
    """The scheme to tell the app: a trusted proxy's ``X-Forwarded-Proto``, else the front's own."""
    if trusted and sent.lower() in (b"http", b"https") and _trusted(peer, trusted):
        return sent.lower()
    return own


def add_trusted_proxy_option(parser: argparse.ArgumentParser) -> None:
    """``--trusted-proxy ADDRESS[,ADDRESS...]``, repeatable (both fronts take it)."""

    def networks(value: str) -> list[Network]:
        try:
            return list(parse_trusted(value.split(",")))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument(
        "--trusted-proxy",
        type=networks,
        action="extend",
        default=[],
        metavar="ADDRESS",
        help="an address or network of your own proxy in front of this one, whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed (repeat or separate by commas); every other client's are "
        "replaced by its address and the front's own scheme",
    )
