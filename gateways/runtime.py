"""From a gateway definition to what the process-control core runs.

The keeper knows nothing of Django; this module turns a Gateway row into a
Spec (argv, environment, probe, policy) and a run directory, and says which
host's worker must do it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from django.conf import settings

from gateways import exposure
from gateways.models import Gateway
from gateways.probe import PATH as PROBE_PATH
from portal import paths
from portal.process import checks
from portal.process.accounts import Account
from portal.process.checks import CheckFailure
from portal.process.spec import Spec
from portal.queues import LOCAL_NAMES, host_queue
from processes.accounts import who
from processes.adapters import ProcessAdapter
from processes.kinds import adapter_for

PASSPHRASE_ENV = "GATEWAY_PASSPHRASE"


def run_dir(gateway: Gateway) -> Path:
    return paths.RUN_DIR / "gateways" / str(gateway.run_key)


def _kind() -> ProcessAdapter:
    return adapter_for("gateway")


def log_folder() -> Path:
    """The folder of every gateway's default log (var/log/gateways): no gateway may choose another's."""
    return _kind().log_folder()


def default_log_path(gateway: Gateway) -> Path:
    return _kind().default_log_path(gateway)


def log_path(gateway: Gateway) -> Path:
    """The definition's log file, or the portal's default one for it."""
    return _kind().log_path(gateway)


def log_file_problem(gateway: Gateway, path: str | None = None) -> CheckFailure | None:
    """Why this gateway may not write or show ``path`` (default: its log file), or None."""
    return _kind().log_file_problem(gateway, path)


def no_passphrase_problem(gateway: Gateway) -> CheckFailure | None:
    """Without a passphrase and without the definition's leave: refused before each start, for a
    definition changed through a path that skipped the form (the table, an older portal)."""
    if gateway.use_passphrase or gateway.allow_no_passphrase:
        return None
    return exposure.check_no_passphrase(gateway.server, gateway.port, False, False, who("gateway", gateway))


# The servers that bind every local address.
WILDCARDS = {"0.0.0.0", "::"}


def servers_overlap(a: str, b: str) -> bool:
    """Would listeners on a and b compete for the same port?

    The same server, or a wildcard (0.0.0.0 binds every local address) beside
    a local address. Host names are compared as written: a definition cannot
    know whether db1 and 10.0.0.5 are the same machine.
    """
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    local = WILDCARDS | {"127.0.0.1", "localhost", "::1"}
    return (a in WILDCARDS and b in local) or (b in WILDCARDS and a in local)


def portal_ports(server: str) -> dict[int, str]:
    """The ports the portal's own parts listen on (make run) that a gateway on ``server`` would
    compete for, each with what holds it: a holder there is the portal, not a program to stop."""
    import os

    host = os.environ.get("PORTAL_HOST", "127.0.0.1")  # where the launcher listens (portal/launcher.py)
    if not servers_overlap(server, host):
        return {}
    ports = {settings.PORTAL_APPS_PORT: "the portal's own front for web applications (PORTAL_APPS_PORT)"}
    if settings.PORTAL_PORT:
        ports[settings.PORTAL_PORT] = "the portal's own pages (PORTAL_PORT)"
    return ports


def defined_ports() -> set[int]:
    """The ports of every gateway definition: a suggested port is none of them."""
    return set(Gateway.objects.values_list("port", flat=True))


def preflight(gateway: Gateway, account: Account | None = None) -> CheckFailure | None:
    """What would make a start fail, found before the start: with a message that says the fix. The
    interpreter runs as ``account``, the user the server will run as."""
    return (
        no_passphrase_problem(gateway)
        or exposure.check_network_exposure(gateway.server, gateway.use_passphrase,
                                           gateway.allow_unauthenticated_network)
        or log_file_problem(gateway)
        or checks.check_python(gateway.interpreter, account)
        or checks.check_modules(gateway.interpreter, ["msgpack"], account)
        or checks.check_bind_address(gateway.server)
        or checks.check_port_free(gateway.server, gateway.port, reserved=portal_ports(gateway.server),
                                  avoid=defined_ports())
    )


def host_of(gateway: Gateway) -> str:
    """The host whose worker starts this gateway: where it listens.

    Loopback, the wildcard and this host's own name mean the portal's host (PORTAL_HOST_NAME).
    The name or address (PORTAL_HOST_ADDRESS) of a host whose worker has reported
    (processes/hosts.py) means that host, even where it is also an address of this machine
    (hosts on one machine's loopback addresses, 127.0.0.2, 127.0.0.3...). Any other address of
    this machine means the portal's host; any other server is a host of its own, served by a
    worker started there with PORTAL_HOST_NAME set to that name.
    """
    from portal.process.checks import local_addresses
    from processes.hosts import named

    server = gateway.server.lower()
    if server in LOCAL_NAMES or server == settings.PORTAL_HOST_NAME.lower():
        return settings.PORTAL_HOST_NAME
    registered = named(server)
    if registered:
        return registered
    if server in local_addresses():
        return settings.PORTAL_HOST_NAME
    return server


def queue_of(gateway: Gateway) -> str:
    return host_queue(host_of(gateway))


def build_spec(gateway: Gateway) -> Spec:
    """The command as an argument list (never a shell); the verifier only in the environment."""
    log = log_path(gateway)
    argv = [
        gateway.interpreter,
        *shlex.split(gateway.python_options),
        "-m",
        "gateways.server",
        "--host",
        gateway.server,
        "--port",
        str(gateway.port),
        # "-": log to stderr, which the keeper has opened on the checked log file.
        "--log-file",
        "-",
        # Connection caps and timeouts (PORTAL_GATEWAY_SERVER_OPTIONS); their defaults live in the server.
        *settings.GATEWAY_SERVER_OPTIONS,
    ]
    env = {"PYTHONPATH": str(settings.BASE_DIR)}
    verifier = gateway.passphrase_verifier if gateway.use_passphrase else ""
    if verifier:
        env[PASSPHRASE_ENV] = verifier
    return Spec(
        name=gateway.name,
        argv=argv,
        env=env,
        secret_env=[PASSPHRASE_ENV] if verifier else [],
        cwd=str(settings.BASE_DIR),
        log_file=str(log),
        log_roots=list(settings.PORTAL_LOG_ROOTS),
        # The connection timeout: how long the portal waits for the server to accept a
        # connection, shake hands and answer one ping, before it tries again.
        # A ping over the gateway protocol, named by import path: the keeper knows no gateway.
        probe={"kind": "import", "path": PROBE_PATH, "host": gateway.server, "port": gateway.port,
               "verifier": verifier or None, "timeout": float(gateway.connection_timeout)},
        init_timeout=float(gateway.init_timeout),
        restart_policy=gateway.restart_policy,
        stop_timeout=float(gateway.stop_timeout),
    )


def display_command(gateway: Gateway) -> str:
    return build_spec(gateway).display_command()


def shell_words(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
