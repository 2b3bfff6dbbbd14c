"""The program definition form. The CLI, the API, the admin and merge files validate through it."""

from __future__ import annotations

import os
import re
from typing import Any

from django import forms
from django.db.models.functions import Lower

from processes.accounts import RUN_AS_ERRORS, check_run_as
from processes.forms import (
    SECRET_KEPT_HELP,
    FieldFeedback,
    SecretAssignmentsTextarea,
    check_assignments,
    check_log_file_field,
    format_assignments,
    keep_secret_values,
    parse_assignments,
    secret_help,
)
from programs import runtime
from programs.models import Program

NAME_RE = re.compile(r"^[A-Za-z0-9_\-.]+$")
# Path segments of the programs' pages that a program's name must not shadow.
RESERVED_NAMES = {"new", "validate"}
MAX_COMMAND = Program._meta.get_field("command").max_length
MAX_DIRECTORY = Program._meta.get_field("directory").max_length
TIMEOUTS = {"init_timeout": (1, 300, 1), "stop_timeout": (1, 300, 10)}


class ProgramForm(FieldFeedback, forms.ModelForm):
    environment = forms.CharField(
        label="Environment variables",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One NAME=value per line, e.g. QUEUE=emails. Shown on the program's page and in its history. "
                  "It also gets HOME, USER, LOGNAME and the locale, and a PATH of the system's folders "
                  "(/usr/local/bin, /usr/bin, /bin and their sbin) unless set here; nothing of the portal's own "
                  "environment.",
    )
    secret_environment = forms.CharField(
        label="Secret environment variables",
        required=False,
        strip=False,
        widget=SecretAssignmentsTextarea(attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off"}),
        help_text=secret_help("the program"),
    )

    class Meta:
        model = Program
        error_messages = RUN_AS_ERRORS
        help_texts = {"log_file": "Full path of a new file in var/log/ (or a folder set in PORTAL_LOG_ROOTS). "
                                  "Blank: var/log/programs/NAME.log."}
        fields = [
            "name",
            "command",
            "directory",
            "environment",
            "secret_environment",
            "probe",
            "probe_target",
            "restart_policy",
            "init_timeout",
            "stop_signal",
            "stop_timeout",
            "log_file",
            "run_as",
            "allow_root",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Warnings do not block a save (processes.editing shows them).
        self.warnings: list[str] = []
        self.field_warnings: dict[str, list[str]] = {}
        self.initial["environment"] = format_assignments(self.instance.environment or {})
        # Names only: a secret's value is never sent to a browser again.
        self.initial["secret_environment"] = format_assignments(self.instance.secret_environment or {},
                                                                hide_values=True)
        self.fields["name"].error_messages.update({
            "required": "A name is required: letters, digits and _ - ., e.g. queue-worker.",
            "max_length": "A program name has at most %(limit_value)d characters (this one has %(show_value)d): "
                          "shorten it.",
        })
        self.fields["command"].error_messages["required"] = (
            "A command is required: the program and its arguments, e.g. /usr/bin/python3 -m http.server 8000.")
        self.fields["restart_policy"].required = False
        self.fields["stop_signal"].required = False
        for name, (low, high, _default) in TIMEOUTS.items():
            field = self.fields[name]
            field.validators = []  # one message for every bad number (_check_range), not Django's
            field.required = False
            field.widget.attrs.update({"min": low, "max": high})
            field.error_messages["invalid"] = f"Enter a whole number of seconds from {low} to {high}."
        # Counted and refused with a message (clean_command), not cut by the browser.
        for name in ("command", "directory"):
            self.fields[name].widget.attrs.pop("maxlength", None)
            self.fields[name].max_length = None
            self.fields[name].validators = []
        if self.instance.pk:
            # The name identifies the definition; it cannot change once saved.
            self.fields["name"].disabled = True
            if self.instance.secret_environment:
                self.fields["secret_environment"].help_text = SECRET_KEPT_HELP

    # Field checks: each message says what is wrong and how to fix it.

    def clean_name(self) -> str:
        if self.instance.pk:
            return self.instance.name
        name = (self.cleaned_data.get("name") or "").strip()
        if not NAME_RE.match(name):
            raise forms.ValidationError(
                "“%(name)s” has characters a program name cannot have: use only letters, digits and _ - . "
                "(no spaces), e.g. queue-worker.",
                params={"name": name[:80]},
            )
        if name in (".", ".."):
            raise forms.ValidationError(
                "“%(name)s” cannot be a program name: browsers remove “.” and “..” from addresses, so its pages "
                "and API could not be reached. Choose a name with a letter or a digit.",
                params={"name": name},
            )
        if name.lower() in RESERVED_NAMES:
            raise forms.ValidationError(
                "“%(name)s” is reserved by the portal's pages: choose another name.", params={"name": name})
        found = Program.objects.annotate(lname=Lower("name")).filter(lname=name.lower()).first()
        if found:
            raise forms.ValidationError(
                "A program named %(other)s already exists (names are unique regardless of case): choose another "
                "name.",
                params={"other": found.name},
            )
        return name

    def clean_command(self) -> str:
        command = (self.cleaned_data.get("command") or "").strip()
        if len(command) > MAX_COMMAND:
            raise forms.ValidationError(
                "A command has at most %(limit)d characters; this one has %(length)d: put the arguments in a "
                "file the program reads, or in its environment.",
                params={"limit": MAX_COMMAND, "length": len(command)},
            )
        if "\n" in command or "\r" in command or "\x00" in command:
            raise forms.ValidationError("A command is one line: remove the line breaks.")
        try:
            runtime.split_command(command)
        except ValueError as e:
            raise forms.ValidationError("The command %(problem)s.", params={"problem": str(e)}) from None
        return command

    def clean_directory(self) -> str:
        directory = (self.cleaned_data.get("directory") or "").strip()
        if not directory:
            return ""
        if len(directory) > MAX_DIRECTORY:
            raise forms.ValidationError("A working directory has at most %(limit)d characters: choose a shorter "
                                        "path.", params={"limit": MAX_DIRECTORY})
        if not directory.startswith("/"):
            raise forms.ValidationError(
                "Give the working directory's full path, e.g. /srv/worker, not “%(path)s”; or leave it blank for "
                "the program's own home folder.",
                params={"path": directory[:80]},
            )
        directory = os.path.normpath(directory)
        if runtime.private_inside(directory):
            raise forms.ValidationError(
                "%(path)s is in (or holds) the portal's private folder var/, which a program's sandbox hides: "
                "choose a folder outside it.",
                params={"path": directory},
            )
        if not os.path.isdir(directory):
            what = "is not a folder" if os.path.exists(directory) else "does not exist on this host"
            raise forms.ValidationError(
                "The working directory %(path)s %(what)s: create it first, or correct the path.",
                params={"path": directory, "what": what},
            )
        return directory

    def clean_environment(self) -> dict[str, str]:
        values = parse_assignments(self.cleaned_data.get("environment") or "", "variable", "NAME=value")
        check_assignments(values, "a program")
        return values

    def clean_secret_environment(self) -> dict[str, str]:
        values = parse_assignments(self.cleaned_data.get("secret_environment") or "", "variable", "NAME=value",
                                   secret=True)
        values = keep_secret_values(values, self.instance.secret_environment if self.instance.pk else {})
        check_assignments(values, "a program")
        return values

    def clean_restart_policy(self) -> str:
        return self.cleaned_data.get("restart_policy") or Program.RestartPolicy.ON_FAILURE

    def clean_stop_signal(self) -> str:
        return self.cleaned_data.get("stop_signal") or "TERM"

    def _check_range(self, name: str) -> int:
        low, high, default = TIMEOUTS[name]
        value = self.cleaned_data.get(name)
        if value is None:
            return default
        if not low <= value <= high:
            raise forms.ValidationError(
                "%(value)s is out of range: enter a whole number of seconds from %(low)d to %(high)d.",
                params={"value": value, "low": low, "high": high},
            )
        return value

    def clean_init_timeout(self) -> int:
        return self._check_range("init_timeout")

    def clean_stop_timeout(self) -> int:
        return self._check_range("stop_timeout")

    def clean_log_file(self) -> str:
        path = (self.cleaned_data.get("log_file") or "").strip()
        if not path:
            return ""
        from programs.adapter import ProgramAdapter

        kind = ProgramAdapter()
        example = kind.log_folder().parent / "worker.log"  # var/log/worker.log
        return check_log_file_field(path, example, lambda p: kind.log_file_problem(self._with_name(), p))

    def _with_name(self) -> Program:
        # The default log's name depends on the name, which a new definition has only now.
        self.instance.name = self.instance.name or self.cleaned_data.get("name") or ""
        return self.instance

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        check_run_as(self, data)
        both = sorted(set(data.get("environment") or {}) & set(data.get("secret_environment") or {}))
        if both:
            self.add_error("secret_environment", f"{', '.join(both)} is given as a plain and as a secret variable: "
                                                 "keep it in one of the two.")
        if data.get("command") and "command" not in self.errors:
            self._resolve_program(data)
        probe, target = data.get("probe") or "", (data.get("probe_target") or "").strip()
        data["probe_target"] = target
        if probe:
            try:
                runtime.parse_probe(probe, target)
            except ValueError as e:
                self.add_error("probe_target", f"{str(e)[0].upper()}{str(e)[1:]}.")
        elif target:
            self.add_error("probe_target", "A probe target is given without a probe: choose the probe (tcp, http or "
                                           "unix), or clear the target.")
        return data

    def _resolve_program(self, data: dict[str, Any]) -> None:
        """The first word as a full path (found on the program's PATH when it is a name), saved so: what
        runs is what was checked, whatever PATH holds later."""
        words = runtime.split_command(data["command"])
        path = (data.get("environment") or {}).get("PATH") or runtime.DEFAULT_PATH
        try:
            program = runtime.resolve_program(words[0], path)
        except ValueError as e:
            self.add_error("command", f"{str(e)[0].upper()}{str(e)[1:]}.")
            return
        if not os.path.exists(program):
            self.add_error("command", f"{program} does not exist on this host: install it, or give the full path of "
                                      "the program to run.")
        elif os.path.isdir(program):
            self.add_error("command", f"{program} is a folder, not a program: give the path of the program itself.")
        elif not os.access(program, os.X_OK):
            self.add_error("command", f"{program} is not executable: make it executable (chmod +x {program}), or "
                                      "run it through its interpreter, e.g. /usr/bin/python3 " + program + ".")
        elif runtime.private_inside(program):
            self.add_error("command", f"{program} is in the portal's private folder var/, which a program's sandbox "
                                      "hides: install it elsewhere.")
        else:
            data["command"] = runtime.with_program(data["command"], program)
            self.instance.command = data["command"]

    def save(self, commit: bool = True) -> Program:
        program = super().save(commit=False)
        if commit:
            program.save()
        return program
