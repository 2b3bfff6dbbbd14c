"""The echo kind's adapter: what the shared layer asks of it, and nothing else."""

from __future__ import annotations

import sys
from typing import Any

from portal.process import checks
from portal.process.spec import Spec
from processes.adapters import ProcessAdapter
from processes.tests.echo.models import Echo

# Answers each line with its prefix, and its token's length (the token itself never leaves the process).
SERVER = """
import os, socket, sys
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("echo listening on", sys.argv[1], flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        line = conn.makefile().readline()
        conn.sendall(f"{sys.argv[2]}{line.strip()} {len(os.environ.get('ECHO_TOKEN', ''))}\\n".encode())
"""


class EchoAdapter(ProcessAdapter):
    kind = "echo"
    label = "echo server"
    label_plural = "echo servers"
    model = Echo
    run_folder = "echoes"
    runtime_fields = ("port", "prefix", "token", "log_file", "restart_policy", "init_timeout", "stop_timeout",
                      "run_as", "allow_root")
    app = "echo"
    export_kind = "echoes"
    search_fields = ("name", "prefix")
    search_hint = "name or prefix"
    empty_text = "An echo server answers each line with its prefix."
    list_columns = (("Port", "port"), ("Prefix", "prefix"))

    def describe(self, obj: Echo) -> str:
        return f"Echo server on 127.0.0.1:{obj.port}"

    def summary(self, obj: Echo) -> str:
        return f"port {obj.port}"

    def preflight(self, obj: Echo) -> checks.CheckFailure | None:
        return self.log_file_problem(obj) or checks.check_port_free("127.0.0.1", obj.port)

    def build_spec(self, obj: Echo) -> Spec:
        return Spec(
            name=obj.name,
            argv=[sys.executable, "-c", SERVER, str(obj.port), obj.prefix],
            env=dict(obj.token),
            secret_env=sorted(obj.token),
            cwd=str(self.home(obj)),
            log_file=str(self.log_path(obj)),
            probe={"kind": "tcp", "host": "127.0.0.1", "port": obj.port},
            init_timeout=float(obj.init_timeout),
            restart_policy=obj.restart_policy,
            stop_timeout=float(obj.stop_timeout),
        )

    def port_of(self, obj: Echo) -> int | None:
        return obj.port

    def status_fields(self, obj: Echo) -> dict[str, Any]:
        return {"port": obj.port}
