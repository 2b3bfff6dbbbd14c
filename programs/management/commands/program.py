"""``manage.py program``: program definitions from scripts, in the words supervisor users know.

    program create NAME --command "CMD ARGS" [--directory DIR] [--env NAME=VALUE]...
                   [--secret-env NAME]... [--secret-env-file FILE] [--probe tcp:HOST:PORT|URL|unix:PATH|none]
                   [--restart-policy never|on-failure|always] [--start-timeout S] [--stop-timeout S]
                   [--stop-signal TERM|INT|QUIT|HUP|KILL|USR1|USR2] [--run-as USER] [--allow-root]
                   [--log-file F]
    program edit NAME [the same options] [--unset-env NAME]... [--restart]
    program list [--json]
    program show NAME [--json]
    program delete NAME
    program start|stop|restart NAME [--wait] [--timeout S]
    program status NAME [--json]

``--command`` is written as shell words and never run through a shell; its first word is saved as
a full path (a name is looked up on the program's PATH). ``--start-timeout`` is supervisor's
startsecs without a probe: the seconds it must stay up to count as started.

Creation and edits go through the same form as the API and merge files, so a bad value gives the
same message (and exit code 1). A secret variable's value never goes on the command line, where
``ps`` shows it to every local user: ``--secret-env NAME`` reads its value from a line of standard
input (one line per name, in order), ``--secret-env-file FILE`` reads NAME=VALUE lines from a file
('-': standard input). A secret's value is never printed.

Who acts: ``--user NAME`` acts as that portal user, with that user's role; without it, the local
operator ("cli:<os user>") with administrator rights, as for ``manage.py gateway``.
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser, BooleanOptionalAction
from typing import Any

from django.core.management.base import CommandError

from portal.cpf.registry import ValueProblem
from portal.process.spec import STOP_SIGNALS
from processes import services
from processes.cli import DefinitionCommand, add_restart_option, save_and_report
from processes.editing import form_data_of
from processes.forms import error_lines, format_assignments, options_of
from programs.cpf import probe_text, probe_value
from programs.forms import ProgramForm
from programs.models import Program

# The fields this command fills from options of other names (the rest: processes.forms.options_of
# reads each option's field from the parser).
FILLED_BY = {
    "name": "NAME",
    "environment": "--env",
    "secret_environment": "--secret-env",
    "probe": "--probe",
    "probe_target": "--probe",
}
# What the options named after the form's fields fill, as given.
PLAIN_FIELDS = ("command", "directory", "restart_policy", "init_timeout", "stop_timeout", "stop_signal",
                "log_file", "run_as")


def program_as_dict(program: Program) -> dict[str, Any]:
    """The definition as the CLI shows it; secret variables by name only."""
    return {
        "name": program.name,
        "command": program.command,
        "directory": program.directory,
        "environment": program.environment,
        "secret_environment": sorted(program.secret_environment or {}),
        "probe": probe_text(program.probe, program.probe_target),
        "restart_policy": program.restart_policy,
        "start_timeout": program.init_timeout,
        "stop_signal": program.stop_signal,
        "stop_timeout": program.stop_timeout,
        "log_file": program.log_file,
        "run_as": program.run_as,
        "allow_root": program.allow_root,
        "state": program.shown_state,
        "created_at": program.created_at.isoformat(),
        "changed_at": program.changed_at.isoformat(),
    }


def _definition_options(parser: ArgumentParser, creating: bool) -> None:
    parser.add_argument("name", metavar="NAME", help="letters, digits and _ - .")
    parser.add_argument("--command", required=creating,
                        help="the command line as shell words, e.g. \"/usr/bin/python3 -m http.server 8000\" "
                             "(never run through a shell)")
    parser.add_argument("--directory", help="its working directory, a full path ('' for its own home folder)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable (repeat for more)")
    parser.add_argument("--secret-env", action="append", default=[], metavar="NAME",
                        help="a secret variable, its value read from a line of standard input (repeat for more)")
    parser.add_argument("--secret-env-file", metavar="FILE",
                        help="secret variables, one NAME=VALUE per line, from a file ('-' reads standard input)")
    parser.add_argument("--probe", metavar="PROBE",
                        help="how it is known ready: tcp:HOST:PORT, an http:// URL, unix:/PATH, or none "
                             "(running once up for --start-timeout seconds)")
    parser.add_argument("--restart-policy", choices=[c.value for c in Program.RestartPolicy])
    parser.add_argument("--start-timeout", dest="init_timeout", metavar="S",
                        help="seconds, 1 to 300: without a probe how long it must stay up (startsecs, default 1), "
                             "with one how long the probe has")
    parser.add_argument("--stop-signal", choices=list(STOP_SIGNALS), type=lambda s: s.upper().removeprefix("SIG"),
                        help="what a stop sends first (default TERM)")
    parser.add_argument("--stop-timeout", metavar="S", help="seconds between the stop signal and SIGKILL, 1 to 300")
    parser.add_argument("--log-file", help="a new file in var/log/ (default var/log/programs/NAME.log)")
    parser.add_argument("--run-as", metavar="USER",
                        help="the user it runs as when the portal runs as root (empty: a user of its own)")
    parser.add_argument("--allow-root", action=BooleanOptionalAction, default=None, help="let --run-as be root")
    if not creating:
        parser.add_argument("--unset-env", action="append", default=[], metavar="NAME",
                            help="remove a variable, plain or secret (repeat for more)")
        add_restart_option(parser, "program")


def _lines_to_dict(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class Command(DefinitionCommand):
    help = "Create, edit, list, show and delete program definitions; start, stop and restart programs."
    kind = "program"
    list_columns = (("NAME", lambda p: p.name), ("STATE", lambda p: p.shown_state), ("COMMAND", lambda p: p.command))
    empty = ("No programs are defined. Create one with "
             "`manage.py program create NAME --command \"/path/to/program ARGS\"`.")

    def as_dict(self, obj: Program) -> dict[str, Any]:
        return program_as_dict(obj)

    def add_definition_parsers(self, sub: Any) -> None:
        self.parsers.update({"create": sub.add_parser("create", help="create a definition"),
                             "edit": sub.add_parser("edit", help="change a definition (the options given; the "
                                                                 "rest is kept)")})
        _definition_options(self.parsers["create"], creating=True)
        _definition_options(self.parsers["edit"], creating=False)

    # Definitions ------------------------------------------------------------------------

    def _read_secret_values(self, names: list[str]) -> list[str]:
        lines = []
        for name in names:
            if "=" in name:
                raise CommandError(
                    f"--secret-env takes a NAME only, not {name.split('=', 1)[0]}=…: a value on the command line "
                    "is shown by ps to every local user. Give --secret-env NAME and write the value on standard "
                    "input, or use --secret-env-file FILE.")
            value = sys.stdin.readline().rstrip("\n")
            if not value:
                raise CommandError(f"No value for the secret variable {name} on standard input: write one line per "
                                   "--secret-env, in the order given (e.g. printf '%s\\n' \"$VALUE\" | manage.py "
                                   "program ...).")
            lines.append(f"{name}={value}")
        return lines

    def _form_data(self, options: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        for field in PLAIN_FIELDS:
            if options.get(field) is not None:
                data[field] = options[field]
        if options.get("allow_root") is not None:
            data["allow_root"] = "on" if options["allow_root"] else ""
        if options.get("probe") is not None:
            try:
                data["probe"], data["probe_target"] = probe_value(options["probe"])
            except ValueProblem as e:
                raise CommandError(f"--probe: {e}") from None
        unset = set(options.get("unset_env") or [])
        env = {k: v for k, v in _lines_to_dict(data.get("environment", "")).items() if k not in unset}
        for item in options.get("env") or []:
            name, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--env {item!r} has no '=': write --env NAME=VALUE.")
            env[name.strip()] = value
        data["environment"] = format_assignments(env)
        secret_lines = [line for line in data.get("secret_environment", "").splitlines()
                        if line.split("=", 1)[0] not in unset]
        new = self._read_secret_values(options.get("secret_env") or [])
        if options.get("secret_env_file"):
            new += self.read_secret_lines(options["secret_env_file"])
        names = {line.split("=", 1)[0].strip() for line in new if "=" in line}
        data["secret_environment"] = "\n".join(
            [line for line in secret_lines if line.split("=", 1)[0] not in names] + new)
        return data

    def _check(self, form: ProgramForm, verb: str) -> None:
        if not form.is_valid():
            lines = error_lines(form, options_of(self.parsers["create" if verb == "created" else "edit"],
                                                 **FILLED_BY))
            raise CommandError(f"The program was not {verb}:\n  " + "\n  ".join(lines))

    def do_create(self, options: dict[str, Any]) -> None:
        services.require_admin(self.actor, "create", Program)
        data = self._form_data(options, {**form_data_of(ProgramForm, Program()), "name": options["name"]})
        form = ProgramForm(data)
        self._check(form, "created")
        program = services.save_definition(form, self.actor, actor=self.actor.get_username())
        self.report_warnings(form)
        self.stdout.write(f"Created program {program.name}: {program.command}")

    def do_edit(self, options: dict[str, Any]) -> None:
        program = self.get(options["name"])
        services.require_admin(self.actor, "edit", Program)
        data = self._form_data(options, form_data_of(ProgramForm, program))
        form = ProgramForm(data, instance=program)
        self._check(form, "saved")
        save_and_report(self, form, options, f"Saved program {program.name}.")
