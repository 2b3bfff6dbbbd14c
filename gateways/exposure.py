"""Who may reach a gateway, and whether it needs a passphrase for that.

A gateway runs any code its clients send, so the rules of who may connect are the gateways' own:
the form refuses what they refuse, and the start checks them again (gateways/runtime.py) for a
definition changed through a path that skipped the form. Django-free, as the checks they use.
"""

from __future__ import annotations

from portal.process.checks import CheckFailure, is_loopback, is_wildcard

NO_PASSPHRASE_BOX = "Allow any local user to run code through it (no passphrase)"


def check_no_passphrase(host: str, port: int | None, use_passphrase: bool, allowed: bool,
                        who: str) -> CheckFailure | None:
    """A gateway runs any code its clients send: without a passphrase every local user (127.0.0.1
    is open to all of them) runs code as ``who``, which needs the definition's explicit leave."""
    if use_passphrase or allowed:
        return None
    where = f"{host}:{port}" if port else host
    reach = "any local user" if not host or is_loopback(host) else f"any local user (and anyone who can reach {where})"
    return CheckFailure(
        "no-passphrase",
        f"Without a passphrase {reach} can run code as {who} through this gateway: tick “Use passphrase” "
        f"and set one, or tick “{NO_PASSPHRASE_BOX}” to accept that.",
    )


def check_network_exposure(host: str, use_passphrase: bool, allowed: bool) -> CheckFailure | None:
    """A gateway runs any code its clients send: beyond loopback it needs a passphrase,
    unless an administrator allowed this definition to go without one."""
    if use_passphrase or allowed or is_loopback(host):
        return None
    where = "listens on every address of the host" if is_wildcard(host) else "is not a loopback address"
    return CheckFailure(
        "open-to-network",
        f"{host or '0.0.0.0'} {where} and no passphrase is set: anyone who can reach the port could run "
        "code as its user. Tick “Use passphrase”, or listen on 127.0.0.1; an administrator who "
        "accepts the risk ticks “Allow connections from the network without a passphrase”.",
    )
