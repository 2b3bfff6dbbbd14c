"""The gateway kind of managed process: what processes/ asks of a gateway (processes/adapters.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateways import runtime
from gateways.models import RUNTIME_FIELDS, Gateway
from portal.process import checks
from portal.process.spec import Spec
from processes.adapters import InstallPlan, ProcessAdapter


class GatewayAdapter(ProcessAdapter):
    kind = "gateway"
    label = "gateway"
    label_plural = "gateways"
    model = Gateway
    run_folder = "gateways"
    # The server and its protocol run as the gateway's user.
    hosted_code = ("gateways", "gateways/protocol")
    runtime_fields = RUNTIME_FIELDS
    # The pages.
    app = "gateways"
    export_kind = "gateways"
    search_fields = ("name", "server")
    search_hint = "name or server"
    empty_text = ("A gateway is a Python server process that programs connect to. Create one to give it a name, "
                  "a port and the Python that runs it.")
    counts_connections = True
    # Back to the list, where the new gateway shows Stopped beside the others (as IRIS's page does).
    after_create = "list"

    def list_lead(self, request: Any) -> str:
        return ("External Python Servers: each definition starts one server process that programs connect to and "
                "drive Python objects in.")

    def describe(self, obj: Gateway) -> str:
        return f"{obj.get_type_display()} gateway on {obj.server}:{obj.port}"

    def summary(self, obj: Gateway) -> str:
        return f"{obj.server}:{obj.port}"

    def preflight(self, obj: Gateway) -> checks.CheckFailure | None:
        return runtime.preflight(obj, self.account(obj))

    def build_spec(self, obj: Gateway) -> Spec:
        return runtime.build_spec(obj)

    def install_of(self, obj: Gateway) -> InstallPlan | None:
        """msgpack, which the server imports, into the gateway's interpreter."""
        python = obj.interpreter
        return InstallPlan(what="msgpack", python=python, has="imports msgpack", refusal="modules-missing",
                           check=lambda: checks.check_modules(python, ["msgpack"]), command=runtime.shell_words)

    def run_dir(self, obj: Gateway) -> Path:
        return runtime.run_dir(obj)

    def sandbox(self, obj: Gateway) -> dict[str, Any]:
        """Less strict than a web application's: a gateway exists to do its clients' work, so the
        rest of the host stays writable; var/ is hidden and the portal's code read-only all the same."""
        return self.sandbox_policy(obj, rest="writable")

    def host_of(self, obj: Gateway) -> str:
        return runtime.host_of(obj)

    def port_of(self, obj: Gateway) -> int | None:
        return obj.port

    def launch_warning(self, obj: Gateway) -> str | None:
        """Its definition allows it to go without a passphrase; each start still says what it means."""
        if obj.use_passphrase:
            return None
        from processes.accounts import who

        runs_as = who(self.kind, obj)
        if obj.open_to_network:
            return (f"{obj.name} starts on {obj.server}:{obj.port} without a passphrase, open to the "
                    f"network (allowed by an administrator): any local user and anyone who can reach the port "
                    f"can run code as {runs_as}")
        return (f"{obj.name} starts on {obj.server}:{obj.port} without a passphrase (allowed on its "
                f"definition): any local user can run code as {runs_as} through it")

    def status_fields(self, obj: Gateway) -> dict[str, Any]:
        return {"server": obj.server, "port": obj.port}

    def unknown_host(self, obj: Gateway) -> checks.CheckFailure | None:
        """A server name of another host that does not exist: no worker can serve its queue.

        Its task would wait in that queue for ever, the gateway "Starting" with no word,
        so the request is answered at once. (A name that the name service could not
        answer for now is sent on: its host's worker checks it again.)
        """
        from django.conf import settings

        if (down := super().unknown_host(obj)) is not None:
            return down
        if runtime.host_of(obj) == settings.PORTAL_HOST_NAME:
            return None  # this host's worker checks the name before the start
        failure = checks.check_host_resolves(obj.server)
        return failure if failure is not None and failure.code == "address-unknown" else None
