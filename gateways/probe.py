"""A gateway's readiness probe: one ping over the gateway protocol.

The keeper calls it by import path (``{"kind": "import", "path": "gateways.probe:ping",
...}``, see portal.process.probes), so the process core never imports gateways. Runs
without Django, inside the keeper.
"""

from __future__ import annotations

import contextlib
from typing import Any

from gateways.client import connect
from portal.process.probes import probe_host

PATH = "gateways.probe:ping"


def ping(probe: dict[str, Any], timeout: float) -> bool:
    """True when the server at ``probe["host"]:probe["port"]`` shakes hands and answers a ping.

    A plain TCP listener on the port does not pass: it cannot shake hands.
    """
    conn = None
    try:
        conn = connect(
            probe_host(probe.get("host")), int(probe["port"]),
            passphrase=probe.get("passphrase"), verifier=probe.get("verifier"), timeout=timeout,
        )
        return bool(conn.ping())
    except Exception:
        return False
    finally:
        close = getattr(conn, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
