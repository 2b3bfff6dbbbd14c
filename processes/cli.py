"""What ``manage.py gateway`` and ``manage.py webapp`` share: start, stop, restart (with
``--wait``) and status. The command's name is the kind of its adapter."""

from __future__ import annotations

import json
from argparse import ArgumentTypeError
from typing import Any

from django.core.management.base import CommandError

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
