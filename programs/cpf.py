"""Programs in merge files: CreateProgram, ModifyProgram, DeleteProgram.

    CreateProgram:Name=worker,Command=/usr/bin/python3 -m worker,Env.QUEUE=emails,Probe=tcp:127.0.0.1:8000

The keys are named after the form's fields (and supervisor's words where it has one). One key
per variable: ``Env.NAME=value``, and ``SecretEnvFile.NAME=/path`` for a secret variable, whose
value is the first line of that file (never written in a merge file, never exported). ``Probe``
is the probe and its target in one value, as the CLI's ``--probe`` writes it: ``tcp:HOST:PORT``,
``http://…`` (or ``http:http://…``), ``unix:/path``, or empty for none.

A merge validates through ProgramForm and saves through processes.services: the same checks and
history as the CLI and the API; starting and stopping for ``--restart`` go through processes.control.
A value with a comma is written in quotes, as in every merge file (portal/cpf/parser.py).
"""

from __future__ import annotations

import copy
from typing import Any

from portal.cpf.registry import Key, Kind, ValueProblem, choice, flag, integer, read_secret_file, shown_value, word_of
from processes.merge import DefinitionMergeAdapter

RESTART_POLICIES = {"never": "never", "on-failure": "on-failure", "always": "always"}
STOP_SIGNALS = {s: s for s in ("TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2")}
ENV, SECRET_ENV_FILE = "Env.", "SecretEnvFile."
PROBE_KINDS = ("tcp", "http", "unix")


def probe_value(value: str) -> tuple[str, str]:
    """``Probe=`` (and the CLI's ``--probe``) as (probe, target): "tcp:127.0.0.1:8000", "http://…",
    "unix:/run/x.sock", "" or "none" for none."""
    value = value.strip()
    if value.lower() in ("", "none"):
        return "", ""
    if value.lower().startswith(("http://", "https://")):
        return "http", value
    kind, sep, target = value.partition(":")
    if not sep or kind.lower() not in PROBE_KINDS:
        raise ValueProblem(f"“{value[:60]}” is not a probe: write tcp:127.0.0.1:8000, http://127.0.0.1:8000/health, "
                           "unix:/run/app.sock, or none.")
    return kind.lower(), target


probe_value.__doc__ = "tcp:HOST:PORT, an http:// URL, unix:/path, or none"


def probe_text(probe: str, target: str) -> str:
    """The probe as ``Probe=`` writes it."""
    if not probe:
        return "none"
    return target if probe == "http" else f"{probe}:{target}"


def signal_word(value: str) -> str:
    word = value.strip().upper()
    word = word[3:] if word.startswith("SIG") else word
    return choice(STOP_SIGNALS)(word)


signal_word.__doc__ = "one of " + ", ".join(STOP_SIGNALS)

KEYS = (
    Key("Name", "name", help="Letters, digits and _ - .; unique regardless of case; the definition's identity."),
    Key("Command", "command", help="The command line as shell words (never run through a shell); its first word "
                                   "a full path or a name found on PATH.", required=True),
    Key("Directory", "directory", help="Full path of its working directory; empty: its own home folder."),
    Key("Probe", "", probe_value, "How it is known ready: tcp:HOST:PORT, an http:// URL, unix:/path, or none "
                                  "(running once up for StartTimeout seconds)."),
    Key("RestartPolicy", "restart_policy", choice(RESTART_POLICIES), "never, on-failure or always."),
    Key("StartTimeout", "init_timeout", integer(1, 300, 1), "Seconds, 1 to 300 (supervisor's startsecs "
                                                            "without a probe; default 1)."),
    Key("StopSignal", "stop_signal", signal_word, "TERM, INT, QUIT, HUP, KILL, USR1 or USR2 (default TERM)."),
    Key("StopTimeout", "stop_timeout", integer(1, 300, 10), "Seconds before SIGKILL, 1 to 300 (default 10)."),
    Key("LogFile", "log_file", help="Full path of the log file; empty: var/log/programs/NAME.log."),
    Key("RunAs", "run_as", help="The user its processes run as when the portal runs as root; empty: a user of "
                                "its own, made by the portal."),
    Key("AllowRoot", "allow_root", flag, "1: RunAs may be root (its code may then do anything on the host)."),
    Key(ENV, "environment", help="Env.NAME=value: one environment variable (all of them, when any is given)."),
    Key(SECRET_ENV_FILE, "secret_environment",
        help="SecretEnvFile.NAME=/path: a secret variable, read from the file's first line.", secret=True),
)
FIELD_KEYS = {k.field: k.name for k in KEYS if k.field and not k.is_prefix}
FIELD_KEYS.update({"probe": "Probe", "probe_target": "Probe"})


class ProgramAdapter(DefinitionMergeAdapter):
    """Through ProgramForm and processes.services, as the CLI and the API do."""

    field_keys = FIELD_KEYS
    model_label = "programs.Program"
    more_runtime_keys = (ENV, SECRET_ENV_FILE)

    def form(self, obj: Any, values: dict[str, Any], quick: bool = False, session: Any = None) -> Any:
        from processes.editing import form_data_of
        from processes.forms import format_assignments
        from programs.forms import ProgramForm

        # A copy: the form writes the new values into its instance, and obj is the "before".
        instance = copy.copy(obj) if obj is not None else None
        data = form_data_of(ProgramForm, instance if instance is not None else self.model())
        for key in KEYS:
            if key.field and not key.is_prefix and key.name in values:
                value = values[key.name]
                data[key.field] = ("on" if value else "") if isinstance(value, bool) else str(value)
        if "Probe" in values:
            data["probe"], data["probe_target"] = values["Probe"]
        given = {k[len(ENV):]: v for k, v in values.items() if k.startswith(ENV)}
        if given:  # the variables become exactly the entries given
            data["environment"] = format_assignments(given)
        problems: dict[str, list[str]] = {}
        secrets = {k[len(SECRET_ENV_FILE):]: v for k, v in values.items() if k.startswith(SECRET_ENV_FILE)}
        if secrets:
            read = {}
            for name, path in secrets.items():
                try:
                    read[name] = read_secret_file(path, f"value of {name}")
                except ValueProblem as e:
                    problems.setdefault(SECRET_ENV_FILE + name, []).append(str(e))
            data["secret_environment"] = format_assignments(read)
        form = ProgramForm(data, instance=instance)
        form.cpf_problems = problems
        form.cpf_current = obj
        return form

    def field_problems(self, form: Any) -> dict[str, list[str]]:
        found: dict[str, list[str]] = dict(getattr(form, "cpf_problems", {}))
        for name, errors in form.errors.items():
            if name == "secret_environment" and any(k.startswith(SECRET_ENV_FILE) for k in found):
                continue
            key = FIELD_KEYS.get(name) or {"environment": ENV + "NAME",
                                           "secret_environment": SECRET_ENV_FILE + "NAME"}.get(name, "")
            found.setdefault(key, []).extend(str(e) for e in errors)
        return found

    def shown(self, obj: Any) -> dict[str, str]:
        values: dict[str, str] = {}
        for key in KEYS:
            if key.name == "Probe":
                values[key.name] = probe_text(obj.probe, obj.probe_target)
            elif key.name == ENV:
                for entry, value in (obj.environment or {}).items():
                    values[ENV + entry] = str(value)
            elif key.is_prefix:
                continue  # secret values are never shown
            else:
                value = getattr(obj, key.field)
                if key.field == "restart_policy":
                    value = word_of(RESTART_POLICIES, value)
                values[key.name] = shown_value(value)
        return values

    def secret_changes(self, form: Any) -> list[str]:
        old = {} if not form.instance.pk else dict(form.cpf_current.secret_environment or {})
        after = form.cleaned_data.get("secret_environment") or {}
        return [SECRET_ENV_FILE + n for n in sorted(set(old) | set(after)) if old.get(n) != after.get(n)]

    def export(self, obj: Any) -> tuple[list[tuple[str, str]], list[str]]:
        notes = []
        if obj.secret_environment:
            names = ", ".join(sorted(obj.secret_environment))
            notes.append(f"{obj.name} has secret variables ({names}), which are never exported: add "
                         f"{SECRET_ENV_FILE}NAME=/path/to/file for each to its line before merging it elsewhere.")
        return list(self.shown(obj).items()), notes


KIND = Kind("Program", "program", "programs", KEYS, ProgramAdapter())


def register() -> None:
    from portal.cpf import registry

    registry.register(KIND)
