"""The program kind of managed process: what processes/ asks of a program (processes/adapters.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.urls import reverse

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

    def preflight(self, obj: Program) -> checks.CheckFailure | None:
        return runtime.preflight(obj, self.account(obj), self.home(obj))

    def build_spec(self, obj: Program) -> Spec:
        return runtime.build_spec(obj, self.home(obj))

    def log_folder(self) -> Path:
        return runtime.log_folder()

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

    def list_url(self) -> str | None:
        return reverse("programs:list")

    def activity_url(self, name: str) -> str | None:
        return reverse("programs:activity", args=[name])

    def status_fields(self, obj: Program) -> dict[str, Any]:
        # A command holds no secret (those are in the secret variables): shown as saved.
        return {"command": obj.command, "directory": obj.directory or None,
                "probe": f"{obj.probe} {obj.probe_target}" if obj.probe else None}
