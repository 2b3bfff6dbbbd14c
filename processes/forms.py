"""What the definition forms of every kind share: the interpreter check of a save, the checks of an
interpreter's and a log file's path, environment variables (plain and secret) written as ``NAME=value``
lines, and how a command line names a form's fields in its messages.

Kind-generic: each kind's form calls these with its kind, its instance and its own fields; each
command with its own parser.
"""

from __future__ import annotations

import os
import re
import tempfile
from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django import forms

from portal.process.checks import path_too_long

if TYPE_CHECKING:
    from portal.process.checks import CheckFailure


def interpreter_problem(kind: str, python: str, instance: Any, run_as: str,
                        memo: dict[Any, str | None] | None = None) -> str | None:
    """Why ``python`` cannot be a definition's interpreter (it does not run, it is no Python, or an
    old one), asked of the interpreter itself as the user the definition will run as (a virtualenv's
    interpreter runs its .pth files: hosted code, never run as the portal); None when it is fine.

    ``memo``: answers of a merge's earlier forms, by interpreter and user.
    """
    from portal.process.accounts import own_folder
    from portal.process.checks import check_python
    from processes.accounts import check_account

    # Not by definition: whether a Python runs is the same for every user of its own (all "others").
    key = ("interpreter", kind, python, (run_as or "").strip())
    if memo is not None and key in memo:
        return memo[key]
    with tempfile.TemporaryDirectory(prefix="pythoncheck-") as home:
        account = check_account(kind, instance if getattr(instance, "pk", None) else None, run_as, home)
        own_folder(home, account)
        failure = check_python(python, account)
    problem = None if failure is None else failure.message[:1].upper() + failure.message[1:].rstrip(".") + "."
    if memo is not None:
        memo[key] = problem
    return problem


# Command lines ---------------------------------------------------------------------------------


def options_of(parser: ArgumentParser, **overrides: str) -> dict[str, str]:
    """The option that sets each form field on ``parser``'s command line, by field name: read from the
    parser itself (an option's ``dest`` is the field it fills: ``--python`` for python_executable, a
    positional by its metavar: NAME), so a message never names an option the command lacks.
    ``overrides``: the fields a command fills another way (the passphrase from ``--passphrase-file``)."""
    found: dict[str, str] = {}
    for action in parser._actions:  # argparse has no public list of a parser's arguments
        if action.dest in ("help", "==SUPPRESS=="):
            continue
        if action.option_strings:
            # Its first long form: --debug of --debug/--no-debug, --verbose of -v/--verbose.
            long = [o for o in action.option_strings if o.startswith("--")]
            found.setdefault(action.dest, (long or action.option_strings)[0])
        else:
            found.setdefault(action.dest, str(action.metavar or action.dest.upper()))
    return {**found, **overrides}


def error_lines(form: forms.BaseForm, options: dict[str, str]) -> list[str]:
    """A form's errors as a command's lines, each led by the option to change (``options``, from
    :func:`options_of`): a field the command has no option for is named by its label on the page."""
    lines = []
    for field, errors in form.errors.items():
        if field == "__all__":
            label = ""
        elif field in options:
            label = options[field]
        elif field in form.fields:
            label = str(form.fields[field].label or field.replace("_", " ").capitalize())
        else:
            label = field.replace("_", " ")
        lines += [f"{label}: {error}" if label else str(error) for error in errors]
    return lines


# Checks of the fields every kind has -------------------------------------------------


def check_python_executable(path: str) -> str:
    """``path`` when it is an interpreter that can be run; else a message that says how to fix it."""
    if not os.path.isabs(path):
        raise forms.ValidationError(
            "Give the full path of the Python executable, e.g. /usr/bin/python3, "
            "not “%(path)s”.",
            params={"path": path},
        )
    too_long = path_too_long(path)
    if too_long:
        raise forms.ValidationError("%(message)s.", params={"message": too_long})
    if not os.path.exists(path):
        raise forms.ValidationError(
            "%(path)s does not exist: give the full path of a Python 3.9 or newer "
            "interpreter on this host, e.g. /usr/bin/python3.",
            params={"path": path},
        )
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise forms.ValidationError(
            "%(path)s is not an executable file: give the path of the python "
            "interpreter itself (e.g. /opt/venv/bin/python), or make it executable.",
            params={"path": path},
        )
    return path


def check_log_file_field(path: str, example: Path, problem: Callable[[str], CheckFailure | None]) -> str:
    """``path`` when the portal may write and show it as a log file; ``problem`` is the
    definition's own check (its log folders, its run directory, its default file)."""
    if not os.path.isabs(path):
        raise forms.ValidationError(
            "Give the log file's full path, e.g. %(example)s, not “%(path)s”.",
            params={"path": path, "example": example},
        )
    too_long = path_too_long(path)
    if too_long:
        raise forms.ValidationError("%(message)s.", params={"message": too_long})
    p = Path(path)
    # os.path's tests answer False on any OSError (ELOOP, EACCES, ENOTDIR); Path's raise some on 3.11.
    if os.path.isdir(path) and not os.path.islink(path):
        raise forms.ValidationError(
            "%(path)s is a folder: add a file name, e.g. %(path)s/%(name)s.",
            params={"path": path.rstrip("/"), "name": example.name},
        )
    # Where logs may be, links resolved; only regular files the portal created.
    # The same check runs again before each start (the disk may change meanwhile).
    failure = problem(path)
    if failure is not None:
        raise forms.ValidationError("%(message)s.", params={"message": failure.message})
    folder = p.parent
    if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(p) and not os.access(p, os.W_OK)):
        raise forms.ValidationError(
            "%(path)s cannot be written by the portal's user: choose another folder or "
            "give that user write access.",
            params={"path": path},
        )
    return path


# Environment variables, as NAME=value lines ------------------------------------------
# Edited as text, one ``NAME=value`` per line: a table of inputs would need JavaScript to add a
# row, and the CLI's ``--env NAME=value`` is the same notation.

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_VARIABLES = 100
MAX_VALUE = 4096


def parse_assignments(text: str, what: str, example: str, secret: bool = False) -> dict[str, str]:
    """``NAME=value`` lines (blank lines and # comments skipped) as a dict; a repeated name is refused.
    With ``secret`` a message never quotes a line: it may be a value typed without its name."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise forms.ValidationError(
                ("Line %(number)d has no “=”" if secret else "Line %(number)d (“%(line)s”) has no “=”")
                + ": write one %(what)s per line as %(example)s.",
                params={"number": number, "line": line[:60], "what": what, "example": example},
            )
        key, value = line.split("=", 1)
        key = key.strip()
        if key in values:
            raise forms.ValidationError(
                "%(key)s is given twice (line %(number)d): keep one line for it.",
                params={"key": key, "number": number},
            )
        values[key] = value
    return values


def format_assignments(values: dict[str, str], hide_values: bool = False) -> str:
    return "\n".join(f"{k}=" if hide_values else f"{k}={v}" for k, v in values.items())


def check_assignments(values: dict[str, str], owner: str, reserved: Callable[[str], None] | None = None) -> None:
    """The rules of every definition's variables: how many, their names, their values' length.
    ``owner`` names who has them ("an application"); ``reserved(name)`` raises for a name the
    kind sets itself."""
    if len(values) > MAX_VARIABLES:
        raise forms.ValidationError(
            "%(count)d variables is more than the %(limit)d %(owner)s may have: put settings in a file "
            "%(reader)s reads.",
            params={"count": len(values), "limit": MAX_VARIABLES, "owner": owner,
                    "reader": "the " + owner.split(" ", 1)[1]},
        )
    for name, value in values.items():
        if not ENV_NAME_RE.match(name):
            raise forms.ValidationError(
                "“%(name)s” is not a variable name: use letters, digits and _, not starting with a digit "
                "(e.g. APP_DB_PATH).",
                params={"name": name[:60]},
            )
        if reserved is not None:
            reserved(name)
        if len(value) > MAX_VALUE:
            raise forms.ValidationError(
                "The value of %(name)s has %(length)d characters, more than %(limit)d: put it in a file and "
                "give the file's path instead.",
                params={"name": name, "length": len(value), "limit": MAX_VALUE},
            )


def keep_secret_values(values: dict[str, str], current: dict[str, str] | None) -> dict[str, str]:
    """Secret variables as posted, where ``NAME=`` keeps the value stored (a page never shows it, so it
    cannot post it back); ``NAME=`` for a new name is refused."""
    for name, value in values.items():
        if value == "":
            if name in (current or {}):
                values[name] = (current or {})[name]
            elif ENV_NAME_RE.match(name):
                raise forms.ValidationError(
                    "%(name)s has no value: write %(name)s=value, or remove the line.", params={"name": name}
                )
    return values


class SecretAssignmentsTextarea(forms.Textarea):
    """Renders ``NAME=value`` lines as ``NAME=`` only, whatever it is given: the form comes back
    to the browser after an error with what was posted, and a secret's value must never go back
    (as PasswordInput(render_value=False) does for one value). A line without “=” may be a value
    typed alone: it is left out."""

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, dict):
            return format_assignments(value, hide_values=True)
        lines = (line.split("=", 1)[0].strip() for line in str(value or "").splitlines() if "=" in line)
        return "\n".join(f"{name}=" for name in lines if name) or None


def secret_help(owner: str) -> str:
    """The help of a secret variables' field; ``owner``: "the application"."""
    return (f"One NAME=value per line, for passwords and keys: given to {owner} only, never shown "
            "again. After an error only the names come back: their values must be entered again.")


SECRET_KEPT_HELP = ("The values are not shown: leave NAME= as it is to keep a value, write NAME=new value to "
                    "change it, remove the line to remove the variable. After an error a new value must be entered "
                    "again.")


class FieldFeedback:
    """What a definition's form says of one field while it is typed (the pages' inline validation,
    processes.definition_views): its errors and warnings (``field_warnings``, filled by the
    kind's checks). A kind's form mixes this in and may say more (a gateway's warnings of the
    whole definition, a web application's import check)."""

    def add_warning(self, field: str | None, message: str) -> None:
        """A warning shown after a save (``warnings``) and beside its field (``field_warnings``):
        what is allowed but may not be what was meant."""
        self.warnings.append(message)  # type: ignore[attr-defined]
        self.field_warnings.setdefault(field or "", []).append(message)  # type: ignore[attr-defined]

    @classmethod
    def validation_kwargs(cls, field: str) -> dict[str, Any]:
        """What the form is made with to check ``field`` alone (a slow check only where it matters)."""
        return {}

    def feedback(self, field: str) -> tuple[list[str], list[str]]:
        self.is_valid()  # type: ignore[attr-defined]
        if field not in self.fields:  # type: ignore[attr-defined]
            return [], []
        errors = list(self.errors.get(field, []))  # type: ignore[attr-defined]
        warnings = list(getattr(self, "field_warnings", {}).get(field, []))
        return errors, warnings
