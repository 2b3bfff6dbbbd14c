"""The program kind of managed process: what processes/ asks of a program (processes/adapters.py)."""

from __future__ import annotations

from typing import Any

from portal.process import checks
from portal.process.spec import Spec
from processes.adapters import ProcessAdapter
from programs import runtime
from programs.models import RUNTIME_FIELDS, Program


class ProgramAdapter(ProcessAdapter):
    kind = "program"
    label = "program"
    label_plural = "programs"
    model = Program
    run_folder = "programs"
    runtime_fields = RUNTIME_FIELDS
    # The pages (processes/definition_views.py).
    app = "programs"
    export_kind = "programs"
    search_fields = ("name", "command")
    search_hint = "name or command"
    empty_text = ("A program is any command line the portal keeps running, as supervisor does: a queue worker, a "
                  "scheduler, a small server. Create one to give it a name and its command.")
    list_columns = (("Command", "command"),)
    advanced_fields = ("restart_policy", "init_timeout", "stop_signal", "stop_timeout", "run_as", "allow_root")

    def describe(self, obj: Program) -> str:
        probe = f", ready when {obj.probe} {obj.probe_target} answers" if obj.probe else ""
        return f"Program{probe}"

    def summary(self, obj: Program) -> str:
        return obj.command

    def preflight(self, obj: Program) -> checks.CheckFailure | None:
        return self.log_file_problem(obj) or runtime.preflight(obj, self.account(obj))

    def build_spec(self, obj: Program) -> Spec:
        return runtime.build_spec(obj, self.home(obj), self.log_path(obj))

    def sandbox(self, obj: Program) -> dict[str, Any]:
        """As a gateway's: a program is whatever its operator needs run (a queue worker writing its
        output folder, a backup job), so the rest of the host stays writable to it, as to its user
        outside the portal; var/ (the portal's database, secret key and every other definition's run
        files) is hidden, the other hosted folders too, and the portal's code read-only, so that it
        cannot change what runs as the portal at its next start."""
        return self.sandbox_policy(obj, rest="writable")

    def port_of(self, obj: Program) -> int | None:
        """The port its TCP probe names (written on its Activity rows), if any."""
        if obj.probe != "tcp":
            return None
        try:
            return runtime.parse_probe(obj.probe, obj.probe_target)["port"]  # type: ignore[index]
        except ValueError:
            return None  # a target changed outside the form: the start says what is wrong with it

    def status_fields(self, obj: Program) -> dict[str, Any]:
        # A command holds no secret (those are in the secret variables): shown as saved.
        return {"command": obj.command, "directory": obj.directory or None,
                "probe": f"{obj.probe} {obj.probe_target}" if obj.probe else None}
