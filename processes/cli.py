"""What ``manage.py gateway`` and ``manage.py webapp`` share: start, stop, restart (with
``--wait``) and status. The command's name is the kind of its adapter."""

from __future__ import annotations

import json
from argparse import ArgumentTypeError
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from portal.process.states import GOAL, RUNNING
from processes import control, editing
from processes.adapters import adapter_of


def positive_seconds(text: str) -> float:
    """The type of --timeout: seconds, 1 to 3600 (argparse says what is wrong)."""
    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number of seconds, e.g. 30") from None
    if not 0 < value <= 3600:
        raise ArgumentTypeError(f"{text} is out of range: give 1 to 3600 seconds")
    return value


def add_control_parsers(sub: Any, label: str, arg: str, *, timeout: str) -> None:
    """The start, stop, restart and status subcommands, on the one named ``arg``; ``timeout`` names
    the definition's start timeout in the help of --timeout."""
    for action in control.ACTIONS:
        parser_ = sub.add_parser(action, help=f"{action} a {label}")
        parser_.add_argument(arg)
        parser_.add_argument("--wait", action="store_true", help="wait until the state settles")
        parser_.add_argument(
            "--timeout", type=positive_seconds,
            help=f"seconds to wait with --wait (default: its {timeout} + stop timeout + 5)",
        )
    status = sub.add_parser("status", help=f"show the state of a {label}")
    status.add_argument(arg)
    status.add_argument("--json", action="store_true")


def control_and_report(command: Any, obj: Any, options: dict[str, Any]) -> None:
    """Ask for ``options["action"]`` on ``obj``; with ``--wait``, wait until it settles and say
    how it ended (a CommandError, exit code 1, when it did not reach the action's goal)."""
    action = options["action"]
    obj = control.request(obj, action, command.actor, channel="cli")
    if not options["wait"]:
        command.stdout.write(f"{action.capitalize()} of {obj.name} requested.")
        return
    timeout = options["timeout"] or obj.init_timeout + obj.stop_timeout + 5
    obj = control.wait_settled(obj, action, timeout)
    replaced = control.superseded(obj, action)
    if replaced:
        raise CommandError(replaced)
    if obj.state not in GOAL[action]:
        detail = f": {obj.last_error}" if obj.last_error else ""
        raise CommandError(
            f"{obj.name} is {obj.state} after the {action}{detail}. "
            f"`manage.py {adapter_of(obj).kind} status {obj.name}` shows more; the log is on its detail page."
        )
    if missed := control.other_hosts_missed(obj, action):
        raise CommandError(f"{missed}. `manage.py {adapter_of(obj).kind} status {obj.name}` shows each host.")
    if RUNNING in GOAL[action]:
        ready = (obj.startup or {}).get("time_to_ready")
        ready_text = f", ready in {ready:.2f} s" if isinstance(ready, (int, float)) else ""
        command.stdout.write(f"{obj.name} is running (pid {obj.pid}{ready_text}).")
    else:
        command.stdout.write(f"{obj.name} is {obj.state}.")


def write_status(command: Any, obj: Any, options: dict[str, Any]) -> None:
    """``status``: what ``control.status_of`` says, as JSON or one ``key: value`` a line."""
    data = control.status_of(obj)
    if options["json"]:
        command.stdout.write(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        command.stdout.write(f"{key.replace('_', ' ')}: {'' if value is None else value}")


def add_restart_option(parser: Any, label: str) -> None:
    """``edit --restart``: save, then restart a running definition with it (processes.editing)."""
    parser.add_argument(
        "--restart", action="store_true",
        help=f"when the {label} is running, restart it with the saved definition (without it a change of a "
             f"running {label}'s runtime fields is refused)",
    )


def save_and_report(command: Any, form: Any, options: dict[str, Any], done: str) -> Any:
    """Save a valid ``form`` (with ``--restart``, restart it too) and say what was done (``done``
    without a restart); a restart asked for but not sent exits 1 after saying that the change is saved."""
    restart = bool(options.get("restart"))
    try:
        saved = editing.save(form, command.actor, then=editing.RESTART if restart else "",
                             actor=command.actor.get_username(), channel="cli")
    except control.ControlError as e:
        hint = ""
        if not restart and editing.restart_offered(command.actor, form.instance):
            hint = f" Or add --restart: the change is saved and {form.instance.name} restarted with it."
        raise CommandError(f"{e}{hint}") from None
    for warning in saved.warnings:
        command.stderr.write(command.style.WARNING(f"Warning: {warning}"))
    if saved.not_restarted and saved.obj.pk and editing.is_running(saved.obj):
        raise CommandError(saved.message)
    command.stdout.write(saved.message if saved.restart_asked else done)
    return saved.obj


class DefinitionCommand(BaseCommand):
    """What ``manage.py gateway``, ``webapp`` and every kind's command share: ``--user``, the
    ``list``, ``show``, ``delete``, ``start``/``stop``/``restart`` and ``status`` subcommands, how a
    definition is found by name, and the dispatch of a subcommand to its ``do_<action>`` method.

    A kind's command gives its ``kind`` (the adapter's), ``arg`` (what its definitions are called on
    the command line: ``name``, ``path``), ``missing`` (what to say of a name that finds none, with
    ``{name}``), ``list_columns`` ((header, value of a definition) for ``list``), ``as_dict(obj)``
    (``show`` and ``list --json``), and adds its own ``create`` and ``edit`` (and any other
    subcommand) in ``add_definition_parsers``.
    """

    kind: str
    arg = "name"
    missing = "There is no {label} named {name!r}: `manage.py {command} list` shows the names."
    list_columns: tuple[tuple[str, Any], ...] = ()
    empty = ""  # what ``list`` says when there is none, with how to create one

    @property
    def adapter(self) -> Any:
        from processes.adapters import adapter_for

        return adapter_for(self.kind)

    def as_dict(self, obj: Any) -> dict[str, Any]:
        raise NotImplementedError

    def add_definition_parsers(self, sub: Any) -> None:
        """The kind's create and edit (into ``self.parsers``), and any subcommand of its own."""

    def add_arguments(self, parser: Any) -> None:
        label = self.adapter.label
        parser.add_argument("--user", help="act as this portal user, with that user's role")
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        self.parsers: dict[str, Any] = {}
        self.add_definition_parsers(sub)
        listing = sub.add_parser("list", help="list definitions")
        listing.add_argument("--json", action="store_true")
        show = sub.add_parser("show", help="show one definition")
        show.add_argument(self.arg)
        show.add_argument("--json", action="store_true")
        delete = sub.add_parser("delete", help="delete a definition")
        delete.add_argument(self.arg)
        add_control_parsers(sub, label, self.arg, timeout=self.adapter.model._meta.get_field("init_timeout")
                            .verbose_name)

    def handle(self, *args: Any, **options: Any) -> None:
        from portal.cli import actor_named

        self.actor = actor_named(options.get("user"))
        action = options["action"]
        handler = self.do_control if action in control.ACTIONS else getattr(self, f"do_{action.replace('-', '_')}")
        try:
            handler(options)
        except (PermissionDenied, control.ControlError) as e:
            raise CommandError(str(e)) from None

    def get(self, name: str) -> Any:
        """The definition the command line names (as its URL would), for one who may see it."""
        from portal import roles

        if not roles.can_view(self.actor):
            raise PermissionDenied("Your account has no role: ask an administrator.")
        model = self.adapter.model
        obj = model.objects.filter(**model.lookup(name.strip())).first() if name.strip() else None
        if obj is None:
            raise CommandError(self.missing.format(label=self.adapter.label, name=name, command=self.kind))
        return obj

    def read_secret_lines(self, path: str, option: str = "--secret-env-file") -> list[str]:
        """The NAME=value lines of a secret variables' file ('-': standard input): a secret never
        comes on the command line, where ps shows it to every local user."""
        import sys
        from pathlib import Path

        from portal.process.checks import path_too_long

        if too_long := path_too_long(path):
            raise CommandError(f"{option}: {too_long}.")
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"Cannot read the secret variables file {path}: {getattr(e, 'strerror', e)}.") from None
        if not text.strip():
            raise CommandError(f"The secret variables file {path} is empty: write one NAME=value per line.")
        return text.splitlines()

    def report_warnings(self, form: Any) -> None:
        for warning in form.warnings:
            self.stderr.write(self.style.WARNING(f"Warning: {warning}"))

    def do_list(self, options: dict[str, Any]) -> None:
        from portal import roles

        if not roles.can_view(self.actor):
            raise PermissionDenied("Your account has no role: ask an administrator.")
        objs = list(self.adapter.model.objects.all())
        if options["json"]:
            self.stdout.write(json.dumps([self.as_dict(obj) for obj in objs], indent=2))
            return
        if not objs:
            self.stdout.write(self.empty)
            return
        # A table whose columns are as wide as their widest value; the last one as it is.
        rows = [[header for header, _ in self.list_columns]]
        rows += [[str(value(obj)) for _, value in self.list_columns] for obj in objs]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]).rstrip())

    def do_show(self, options: dict[str, Any]) -> None:
        data = self.as_dict(self.get(options[self.arg]))
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        for key, value in data.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
            elif isinstance(value, list):
                value = ", ".join(f"{k}=(secret)" for k in value) or "none"
            self.stdout.write(f"{key.replace('_', ' ')}: {value}")

    def do_delete(self, options: dict[str, Any]) -> None:
        from processes import services

        obj = self.get(options[self.arg])
        services.delete_definition(obj, self.actor, actor=self.actor.get_username())
        self.stdout.write(f"Deleted {self.adapter.label} {obj.name}.")

    def do_control(self, options: dict[str, Any]) -> None:
        control_and_report(self, self.get(options[self.arg]), options)

    def do_status(self, options: dict[str, Any]) -> None:
        write_status(self, self.get(options[self.arg]), options)
