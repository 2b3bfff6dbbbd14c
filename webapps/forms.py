"""The web application definition form. The CLI validates through this same form.

Environment variables, secret ones and static mappings are edited as text, one
``NAME=value`` per line: a table of inputs would need JavaScript to add a row,
and the CLI's ``--env NAME=value`` is the same notation.
"""

from __future__ import annotations

import bisect
import copy
import keyword
import os
import re
import sys
from collections.abc import Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.urls import reverse

from portal import paths
from portal.process.checks import path_too_long
from portal.process.states import START
from processes.accounts import RUN_AS_ERRORS, check_run_as
from processes.forms import (
    SECRET_KEPT_HELP,
    FieldFeedback,
    SecretAssignmentsTextarea,
    check_assignments,
    check_log_file_field,
    check_python_executable,
    format_assignments,
    keep_secret_values,
    parse_assignments,
    secret_help,
)
from webapps.models import DEFAULT_THREADS, DEFAULT_WORKERS, MAX_THREADS, MAX_WORKERS, WebApp, folder_requirements
from webapps.runtime import engines

SEGMENT_RE = re.compile(r"^[A-Za-z0-9._~-]+$")
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_PATH = WebApp._meta.get_field("name").max_length
MAX_STATIC = 20
# Set by the portal for every application: the mount, and the uvicorn launcher's target.
PORTAL_SET_VARIABLES = engines.RESERVED_ENV
# The fields the import check depends on: an inline check of one of them runs it.
APP_CHECK_FIELDS = {"directory", "module", "callable", "protocol", "python_executable", "environment",
                    "secret_environment"}
APP_CHECK_TIMEOUT = 10.0


class Mounts:
    """The definitions' paths, read once for many forms: a merge's, which run under its lock and
    tell it what each save and delete changes. ``overlapping`` answers what the form's query of
    every other path answers (see WebAppForm._check_overlapping_paths), by looking up only the
    path's ancestors and descendants, so a merge of many applications does not read every path
    for each of them."""

    def __init__(self, names: Iterable[str]) -> None:
        self.by_lower = {name.lower(): name for name in names}
        self.ordered = sorted(self.by_lower)  # the database's order, Lower("name"): paths are ASCII
        # The fields (and their length limits) the merge's forms share (see WebAppForm.__init__).
        self.fields: dict[Any, tuple[dict[str, Any], dict[str, int]]] = {}

    @classmethod
    def read(cls) -> Mounts:
        return cls(WebApp.objects.values_list("name", flat=True))

    def saved(self, name: str) -> None:
        if name.lower() not in self.by_lower:
            bisect.insort(self.ordered, name.lower())
        self.by_lower[name.lower()] = name

    def deleted(self, name: str) -> None:
        if self.by_lower.pop(name.lower(), None) is not None:
            self.ordered.remove(name.lower())

    def overlapping(self, path: str) -> list[str]:
        """The paths that contain ``path`` or that it contains, in the database's order."""
        lower = path.lower()
        found = set()
        cut = lower.rfind("/")
        while cut > 0:  # the ancestors: /a and /a/b for /a/b/c
            if lower[:cut] in self.by_lower:
                found.add(lower[:cut])
            cut = lower.rfind("/", 0, cut)
        i = bisect.bisect_left(self.ordered, lower + "/")
        while i < len(self.ordered) and self.ordered[i].startswith(lower + "/"):  # the descendants
            found.add(self.ordered[i])
            i += 1
        return [self.by_lower[o] for o in sorted(found)]


def normalise_path(text: str) -> str:
    """The mount path written the one way the portal stores it, or a ValidationError that says why not.

    ``/`` alone is refused: an application there would take every path that no other
    application has, so a mistyped address would reach its code instead of the front's
    404, and each new application would silently take a part of its URLs away.
    """
    path = text.strip()
    if not path:
        raise forms.ValidationError("A path is required: the URL path to serve the application at, e.g. /flask.")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1:
        path = path.rstrip("/")
    if path == "/":
        raise forms.ValidationError(
            "/ alone cannot be an application's path: it would answer every address that no other application "
            "has, in place of the front's “not found”. Give it a path of its own, e.g. /app."
        )
    if len(path) > MAX_PATH:
        raise forms.ValidationError(
            "A path has at most %(limit)d characters (this one has %(length)d): shorten it.",
            params={"limit": MAX_PATH, "length": len(path)},
        )
    for segment in path[1:].split("/"):
        if segment == "":
            raise forms.ValidationError(
                "“%(path)s” has an empty segment (//): write it with single slashes, e.g. /shop/api.",
                params={"path": path},
            )
        if segment in (".", ".."):
            raise forms.ValidationError(
                "“%(path)s” has a “%(segment)s” segment, which browsers remove from addresses: "
                "use names only, e.g. /shop/api.",
                params={"path": path, "segment": segment},
            )
        if segment == "-":
            raise forms.ValidationError(
                "“%(path)s” has a segment that is only “-”, which the portal's pages use to separate an "
                "application's path from their own: use another name, e.g. /shop/api.",
                params={"path": path},
            )
        if not SEGMENT_RE.match(segment):
            bad = "".join(sorted({c for c in segment if not SEGMENT_RE.match(c)}))
            raise forms.ValidationError(
                "“%(path)s” has characters a path cannot have (%(bad)s): use letters, digits and . _ ~ - "
                "in segments separated by /, e.g. /flask or /shop/api.",
                params={"path": path, "bad": bad},
            )
    return path


def private_folder_inside(directory: str) -> str:
    """How serving ``directory`` would expose var/ ("holds" or "is inside"), or "" when it would not.
    Links are resolved: the front serves what the folder really holds."""
    real, private = os.path.realpath(directory), os.path.realpath(paths.VAR_DIR)
    if real == private or real.startswith(private + os.sep):
        return "is inside"
    if private.startswith(real.rstrip(os.sep) + os.sep):
        return "holds"
    return ""


def check_variables(values: dict[str, str], field: str) -> None:
    """The variables' common rules (processes.forms.check_variables), and none the portal sets."""
    def reserved(name: str) -> None:
        if name in PORTAL_SET_VARIABLES:
            raise forms.ValidationError(
                "%(name)s is set by the portal (SCRIPT_NAME to the application's path, %(target)s to its "
                "module:callable): remove the line.",
                params={"name": name, "target": engines.TARGET_ENV},
            )

    check_assignments(values, "an application", reserved)


SECRET_HELP = secret_help("the application")


class WebAppForm(FieldFeedback, forms.ModelForm):
    environment = forms.CharField(
        label="Environment variables",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One NAME=value per line, e.g. APP_DB_PATH=/srv/flask/app.sqlite3. Shown on the application's "
                  "page and in its history.",
    )
    secret_environment = forms.CharField(
        label="Secret environment variables",
        required=False,
        strip=False,
        widget=SecretAssignmentsTextarea(attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off"}),
        help_text=SECRET_HELP,
    )
    static_files = forms.CharField(
        label="Static files",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="One SUBPATH=DIRECTORY per line, e.g. /static=/srv/flask/static: the front serves the files "
                  "of that directory at PATH/static without asking the application.",
    )

    class Meta:
        model = WebApp
        error_messages = RUN_AS_ERRORS
        help_texts = {"log_file": "Full path of a new file in var/log/ (or a folder set in PORTAL_LOG_ROOTS). "
                                  "Blank: var/log/webapps/PATH.log."}
        fields = [
            "name",
            "directory",
            "module",
            "callable",
            "protocol",
            "debug",
            "python_executable",
            "requirements_file",
            "engine",
            "workers",
            "threads",
            "environment",
            "secret_environment",
            "static_files",
            "log_file",
            "restart_policy",
            "init_timeout",
            "stop_timeout",
            "namespace",
            "match_roles",
            "run_as",
            "allow_root",
            "hosts",
        ]

    @classmethod
    def validation_kwargs(cls, field: str) -> dict[str, Any]:
        # The import check starts the application's interpreter: only for the fields it depends on.
        return {"check_app": field in APP_CHECK_FIELDS}

    def feedback(self, field: str) -> tuple[list[str], list[str]]:
        errors, warnings = super().feedback(field)
        problem = self.app_problem
        if field in APP_CHECK_FIELDS and problem is not None and problem.field != field:
            # The import check's answer concerns the field just changed too (e.g. the directory).
            errors = [*errors, problem.message]
        return list(dict.fromkeys(errors)), warnings

    def __init__(self, *args: Any, check_app: bool = True, app_checks: dict[Any, Any] | None = None,
                 mounts: Mounts | None = None, fix_keys: Any = None, **kwargs: Any) -> None:
        # A merge's forms share their fields: Django deep-copies the class's fields for each form
        # (a third of a form's cost) so that one form's changes do not reach another, but the
        # fields below differ only by whether the instance is saved and has secret variables, and
        # nothing changes them after __init__ (a merge's forms are validated, never rendered).
        instance = kwargs.get("instance")
        shared_key = (bool(instance and instance.pk), bool(instance and instance.pk and instance.secret_environment))
        shared = mounts.fields.get(shared_key) if mounts is not None else None
        if shared is not None:
            self.base_fields = {}  # nothing to copy: the shared fields come below
        super().__init__(*args, **kwargs)
        # A merge's paths of the definitions (see Mounts); None: ask the database.
        self.mounts = mounts
        # The import check starts the application's interpreter: a Save always runs it, an
        # inline check only for the fields it depends on.
        self.check_app = check_app
        # A merge's answers of the import check, shared by its lines (None: check each form).
        self.app_checks = app_checks
        # webapps.checks.FixKeys: how its messages name the fields (a merge file's keys, a
        # command's options); None: the form's own words.
        self.fix_keys = fix_keys
        self.app_problem: Any = None
        self.warnings: list[str] = []
        self.field_warnings: dict[str, list[str]] = {}
        if not self.instance.pk and "threads" not in kwargs.get("initial", {}):
            self.initial["threads"] = None  # blank: the protocol's default (DEFAULT_THREADS), set on save
        if self.instance.pk:
            self.initial["environment"] = format_assignments(self.instance.environment or {})
            # Names only: a secret's value is never sent to a browser again.
            self.initial["secret_environment"] = format_assignments(self.instance.secret_environment or {},
                                                                    hide_values=True)
            self.initial["static_files"] = format_assignments(self.instance.static_files or {})
        if shared is not None:
            self.fields, self.limits = shared
            return
        self._customize_fields()
        if mounts is not None:
            mounts.fields[shared_key] = (self.fields, self.limits)

    def _customize_fields(self) -> None:
        self.limits: dict[str, int] = {}
        validate_url = reverse("webapps:validate")
        for name, field in self.fields.items():
            # Inline validation: on change, post the whole form and put this field's
            # messages in its feedback box. Without JS, Save validates.
            field.widget.attrs.update({
                "hx-post": validate_url,
                "hx-trigger": "change",
                "hx-include": "closest form",
                "hx-target": f"#feedback-{name}",
                "hx-swap": "innerHTML",
            })
            # Counted and refused with a message (_check_lengths), not cut short by the browser.
            field.widget.attrs.pop("maxlength", None)
            if isinstance(field, forms.CharField) and field.max_length:
                self.limits[name] = field.max_length
                field.max_length = None
                field.validators = [v for v in field.validators if not isinstance(v, MaxLengthValidator)]
        self.fields["engine"].choices = [("", "Default: gunicorn for WSGI, uvicorn for ASGI"),
                                         *WebApp.Engine.choices]
        self.fields["callable"].required = False
        self.fields["protocol"].required = False
        self.fields["restart_policy"].required = False
        messages = {
            "name": "A path is required: the URL path to serve the application at, e.g. /flask.",
            "directory": "The application directory is required: the full path of the folder with its code, "
                         "e.g. /srv/flask.",
            "module": "The application module is required: the module that holds the application, without .py, "
                      "e.g. app or mysite.wsgi.",
        }
        for name, text in messages.items():
            self.fields[name].error_messages["required"] = text
        for name, low, high in (("workers", 1, MAX_WORKERS), ("threads", 1, MAX_THREADS),
                                ("init_timeout", 2, 300), ("stop_timeout", 1, 300)):
            field = self.fields[name]
            field.validators = []  # one message for every bad number (_check_range), not Django's
            field.required = False
            field.widget.attrs.update({"min": low, "max": high})
            field.error_messages["invalid"] = f"Enter a whole number from {low} to {high}."
        self.fields["threads"].widget.attrs["placeholder"] = \
            f"{DEFAULT_THREADS['wsgi']} for WSGI, {DEFAULT_THREADS['asgi']} for ASGI"
        if self.instance.pk:
            self.fields["name"].disabled = True
            if self.instance.secret_environment:
                self.fields["secret_environment"].help_text = SECRET_KEPT_HELP

    # Field checks: each message says what is wrong and how to fix it.

    def clean_name(self) -> str:
        if self.instance.pk:
            return self.instance.name
        path = normalise_path(self.cleaned_data.get("name") or "")
        if self.mounts is not None:
            clash = self.mounts.by_lower.get(path.lower())
        else:
            found = WebApp.objects.filter(name__iexact=path).exclude(pk=self.instance.pk).first()
            clash = found.name if found else None
        if clash:
            raise forms.ValidationError(
                "The path %(path)s is already used by the application %(other)s (paths are unique regardless of "
                "case): choose another path.",
                params={"path": path, "other": clash},
            )
        return path

    def _get_validation_exclusions(self) -> set[str]:
        exclude = super()._get_validation_exclusions()
        if self.mounts is not None:
            # clean_name checked the path against the mounts, which are the database under the
            # merge's lock: the model's check of its case-insensitive constraint (a query) would
            # repeat it. The form field checks its length; normalise_path its characters.
            exclude.add("name")
        return exclude

    def clean_directory(self) -> str:
        path = (self.cleaned_data.get("directory") or "").strip()
        if not os.path.isabs(path):
            # A page has no working directory to resolve it in: the example is the folder it most
            # likely means, the one of that name in the portal's own installation (the README's tour
            # names examples/webapps/flaskapp from there), else a typical one.
            beside = os.path.normpath(os.path.join(settings.BASE_DIR, path)) if path else ""
            example = beside if beside and os.path.isdir(beside) else "/srv/flask"
            raise forms.ValidationError(
                "Give the application directory's full path, e.g. %(example)s, not “%(path)s”.",
                params={"path": path[:200], "example": example},
            )
        path = os.path.normpath(path)
        too_long = path_too_long(path)
        if too_long:
            raise forms.ValidationError("%(message)s.", params={"message": too_long})
        if not os.path.exists(path):
            raise forms.ValidationError(
                "%(path)s does not exist on this host: give the folder that holds the application's code.",
                params={"path": path},
            )
        if not os.path.isdir(path):
            raise forms.ValidationError(
                "%(path)s is a file, not a folder: give the folder that holds it, e.g. %(parent)s.",
                params={"path": path, "parent": os.path.dirname(path)},
            )
        if not os.access(path, os.R_OK | os.X_OK):
            raise forms.ValidationError(
                "%(path)s cannot be read by the portal's user: give that user read access (chmod o+rx, or add "
                "it to the folder's group).",
                params={"path": path},
            )
        return path

    def clean_module(self) -> str:
        module = (self.cleaned_data.get("module") or "").strip()
        if module.endswith(".py"):
            raise forms.ValidationError(
                "Write the module without .py: %(module)s.",
                params={"module": module[:-3].replace("/", ".")},
            )
        if ":" in module:
            raise forms.ValidationError(
                "“%(module)s” names a callable too: put %(module_part)s here and %(callable)s in Callable name.",
                params={"module": module, "module_part": module.split(":")[0], "callable": module.split(":")[-1]},
            )
        if "/" in module or "\\" in module:
            raise forms.ValidationError(
                "A module is named with dots, relative to the application directory: %(dotted)s, not “%(module)s”.",
                params={"module": module, "dotted": module.strip("/").replace("/", ".").replace("\\", ".")},
            )
        self._check_dotted(module, "module", "app or mysite.wsgi")
        return module

    def clean_callable(self) -> str:
        name = (self.cleaned_data.get("callable") or "").strip() or "app"
        self._check_dotted(name, "callable name", "app or application")
        return name

    def _check_dotted(self, value: str, what: str, example: str) -> None:
        parts = value.split(".")
        for part in parts:
            if not IDENTIFIER_RE.match(part) or keyword.iskeyword(part):
                raise forms.ValidationError(
                    "“%(value)s” is not a Python %(what)s: use names of letters, digits and _ joined by dots, "
                    "not starting with a digit, e.g. %(example)s.",
                    params={"value": value[:100], "what": what, "example": example},
                )

    def clean_protocol(self) -> str:
        return self.cleaned_data.get("protocol") or WebApp.Protocol.WSGI

    def clean_restart_policy(self) -> str:
        return self.cleaned_data.get("restart_policy") or WebApp.RestartPolicy.ON_FAILURE

    def clean_python_executable(self) -> str:
        path = (self.cleaned_data.get("python_executable") or "").strip()
        return check_python_executable(path) if path else ""

    def clean_requirements_file(self) -> str:
        path = (self.cleaned_data.get("requirements_file") or "").strip()
        if not path:
            return ""
        if not os.path.isabs(path):
            # A page has no working directory to resolve it in (the CLI resolves it in its own), so it
            # is refused; the message names the file it most likely means: in the application's
            # directory or above it (examples/webapps/flaskapp/requirements.txt from the project's root).
            directory = self.cleaned_data.get("directory") or ""
            example = os.path.join(directory or "/srv/flask", "requirements.txt")
            folder = directory
            while folder and not os.path.isfile(os.path.join(folder, path)) and folder != os.path.dirname(folder):
                folder = os.path.dirname(folder)
            if folder and os.path.isfile(os.path.join(folder, path)):
                example = os.path.normpath(os.path.join(folder, path))
            raise forms.ValidationError(
                "Give the requirements file's full path, e.g. %(example)s, not “%(path)s”.",
                params={"path": path[:200], "example": example},
            )
        too_long = path_too_long(path)
        if too_long:
            raise forms.ValidationError("%(message)s.", params={"message": too_long})
        if not os.path.isfile(path):
            what = "a folder" if os.path.isdir(path) else "not there"
            raise forms.ValidationError(
                "%(path)s is %(what)s: give the path of a requirements file (pip's format), e.g. "
                "/srv/flask/requirements.txt.",
                params={"path": path, "what": what},
            )
        if not os.access(path, os.R_OK):
            raise forms.ValidationError(
                "%(path)s cannot be read by the portal's user: give that user read access.", params={"path": path}
            )
        return path

    def _check_range(self, name: str, low: int, high: int, default: Any, unit: str) -> Any:
        value = self.cleaned_data.get(name)
        if value is None:
            return default
        if not low <= value <= high:
            raise forms.ValidationError(
                "%(value)s is out of range: give %(low)d to %(high)d %(unit)s.",
                params={"value": value, "low": low, "high": high, "unit": unit},
            )
        return value

    def clean_workers(self) -> int:
        return self._check_range("workers", 1, MAX_WORKERS, DEFAULT_WORKERS, "worker processes")

    def clean_threads(self) -> int | None:
        # None (blank) becomes the protocol's default in _check_engine, which knows the protocol.
        return self._check_range("threads", 1, MAX_THREADS, None, "threads per worker")

    def clean_init_timeout(self) -> int:
        return self._check_range("init_timeout", 2, 300, 30, "seconds")

    def clean_stop_timeout(self) -> int:
        return self._check_range("stop_timeout", 1, 300, 10, "seconds")

    def clean_environment(self) -> dict[str, str]:
        values = parse_assignments(self.cleaned_data.get("environment") or "", "variable", "NAME=value")
        check_variables(values, "environment")
        return values

    def clean_secret_environment(self) -> dict[str, str]:
        values = parse_assignments(self.cleaned_data.get("secret_environment") or "", "variable", "NAME=value",
                                   secret=True)
        values = keep_secret_values(values, self.instance.secret_environment if self.instance.pk else {})
        check_variables(values, "secret_environment")
        return values

    def clean_static_files(self) -> dict[str, str]:
        raw = parse_assignments(self.cleaned_data.get("static_files") or "", "mapping", "/static=/srv/app/static")
        if len(raw) > MAX_STATIC:
            raise forms.ValidationError(
                "%(count)d static mappings are more than %(limit)d: serve one parent folder instead.",
                params={"count": len(raw), "limit": MAX_STATIC},
            )
        mappings: dict[str, str] = {}
        for sub, directory in raw.items():
            try:
                url = normalise_path(sub)
            except forms.ValidationError as e:
                raise forms.ValidationError(
                    "The static sub-path “%(sub)s” is not usable: %(why)s",
                    params={"sub": sub[:100], "why": " ".join(e.messages)},
                ) from None
            directory = directory.strip()
            if not os.path.isabs(directory):
                raise forms.ValidationError(
                    "The folder for %(url)s must be a full path, e.g. %(url)s=/srv/app%(url)s, not “%(dir)s”.",
                    params={"url": url, "dir": directory[:200]},
                )
            too_long = path_too_long(directory)
            if too_long:
                raise forms.ValidationError("The folder for %(url)s: %(message)s.",
                                            params={"url": url, "message": too_long})
            if not os.path.isdir(directory) or not os.access(directory, os.R_OK | os.X_OK):
                raise forms.ValidationError(
                    "The folder %(dir)s for %(url)s does not exist or cannot be read by the portal's user: "
                    "create it, or give the folder that holds the static files.",
                    params={"url": url, "dir": directory},
                )
            exposed = private_folder_inside(directory)
            if exposed:
                raise forms.ValidationError(
                    "The folder %(dir)s for %(url)s %(how)s the portal's private folder %(var)s (its database, "
                    "secret key and logs): anyone who reaches the applications' port could read them. Give the "
                    "folder of the static files themselves.",
                    params={"url": url, "dir": directory, "how": exposed, "var": paths.VAR_DIR},
                )
            if url.lower() in {u.lower() for u in mappings}:
                raise forms.ValidationError("%(url)s is mapped twice: keep one line for it.", params={"url": url})
            mappings[url] = os.path.normpath(directory)
        return mappings

    def clean_hosts(self) -> str:
        """Host names, each once; a host whose process group runs may not be dropped."""
        from processes.hosts import down_failure
        from webapps import hosts

        text = (self.cleaned_data.get("hosts") or "").strip()
        bad = hosts.bad_host_names(text)
        if bad:
            raise forms.ValidationError(
                f"{', '.join(bad)} is not a host name: give the names the hosts' workers serve (their "
                "PORTAL_HOST_NAME), letters, digits, dots and dashes, separated by commas, e.g. web1, web2.")
        names = hosts.host_names(text)
        if len(names) > hosts.MAX_HOSTS:
            raise forms.ValidationError(
                f"{len(names)} hosts are named; an application runs on at most {hosts.MAX_HOSTS}: name fewer.")
        if len(names) == 1 and hosts.same_host(names[0], ""):
            names = []  # this portal's host alone: the same as blank
        value = ", ".join(names)
        instance = copy.copy(self.instance)
        instance.hosts = value
        running = [g for g in hosts.dropped_groups(instance) if g.is_active or g.intent == START]
        if running:
            where = ", ".join(hosts.host_of(g) for g in running)
            raise forms.ValidationError(
                f"{self.instance.name} runs on {where}: stop it there first (its page's Hosts table has a Stop "
                f"for each host), then take {where} off its hosts.")
        for name in names:
            problem = down_failure(name)
            if problem:
                self.add_warning("hosts", problem[0].upper() + problem[1:] + ".")
        return value

    def clean_log_file(self) -> str:
        from webapps import adapter

        path = (self.cleaned_data.get("log_file") or "").strip()
        if not path:
            return ""
        example = adapter.log_folder().parent / "flask.log"
        return check_log_file_field(path, example, lambda p: adapter.log_file_problem(self._with_name(), p))

    def _with_name(self) -> WebApp:
        # The default log's name depends on the path, which a new definition has only now.
        self.instance.name = self.instance.name or self.cleaned_data.get("name") or ""
        return self.instance

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        check_run_as(self, data)
        self._check_lengths(data)
        python, requirements = data.get("python_executable"), data.get("requirements_file")
        if python and requirements:
            self.add_error(
                "requirements_file",
                "Give either a Python executable or a requirements file, not both: with a requirements file the "
                "portal builds the application's own virtualenv. Clear one of the two.",
            )
        elif python and not requirements and self.check_app and "python_executable" not in self.errors:
            self._check_interpreter(python, data)
        self._note_found_requirements(data)
        self._check_engine(data)
        self._check_overlapping_paths(data)
        plain, secret = data.get("environment") or {}, data.get("secret_environment") or {}
        both = sorted(set(plain) & set(secret))
        if both:
            self.add_error(
                "secret_environment",
                f"{', '.join(both)} is given as a plain and as a secret variable: keep it in one of the two.",
            )
        # The import check needs only its own fields right (not, say, the path): a person who
        # fills the directory and module first hears at once whether they import.
        needed = APP_CHECK_FIELDS | {"requirements_file"}
        if self.check_app and not any(f in self.errors for f in needed) and data.get("directory") and \
                data.get("module"):
            self._check_application(data)
        if self.check_app and self.app_checks is None and not self.errors:
            self._check_other_hosts(data)
        return data

    def _check_other_hosts(self, data: dict[str, Any]) -> None:
        """Its files exist on each of its other hosts: asked of their workers (a Save's, not a merge's)."""
        from processes.hosts import check_paths_on, down_failure
        from webapps.hosts import host_names, same_host

        # A host down or without a worker is said by clean_hosts already.
        others = [n for n in host_names(data.get("hosts") or "") if not same_host(n, "") and not down_failure(n)]
        if not others:
            return
        wanted = [("application directory", data["directory"], "folder")]
        if data.get("requirements_file"):
            wanted.append(("requirements file", data["requirements_file"], "file"))
        elif data.get("python_executable"):
            wanted.append(("Python executable", data["python_executable"], "program"))
        for host, answer in check_paths_on(others, wanted).items():
            if isinstance(answer, str):
                self.add_warning("hosts", f"{host}'s files were not checked: {answer}. They are checked at its "
                                          "first start there.")
            elif answer:
                self.add_warning("hosts", f"{host} lacks {' and '.join(answer)}: put the application there "
                                          f"(the same path on every host) before it starts on {host}.")

    def _check_interpreter(self, python: str, data: dict[str, Any]) -> None:
        """It is a Python interpreter the application's user can run (not /bin/ls): said before the import
        check, whose answer would only be that it ended without one."""
        from processes.forms import interpreter_problem

        problem = interpreter_problem("webapp", python, self.instance, data.get("run_as") or "", self.app_checks)
        if problem:
            self.add_error("python_executable", problem)

    def found_requirements(self, data: dict[str, Any]) -> str:
        """The directory's requirements.txt, used when neither an interpreter nor a requirements file
        is given (WebApp.found_requirements: the same rule at each start)."""
        if any(f in self.errors for f in ("directory", "python_executable", "requirements_file")):
            return ""
        return folder_requirements(data.get("directory") or "", data.get("python_executable") or "",
                                   data.get("requirements_file") or "")

    def _note_found_requirements(self, data: dict[str, Any]) -> None:
        found = self.found_requirements(data)
        if not found:
            return
        keys = self.fix_keys
        python = f"{keys.python_executable}/path/to/python" if keys else "a Python executable"
        message = (f"No interpreter or requirements file is given, and the application directory has {found}: the "
                   "portal builds the application's own virtualenv from it at its start (and again whenever the file "
                   f"changes). To run it with an interpreter of your own instead, give {python}.")
        # Said once (Save's messages, a merge's preview), beside each of the three fields that decide it.
        self.warnings.append(message)
        for field in ("directory", "python_executable", "requirements_file"):
            self.field_warnings.setdefault(field, []).append(message)

    def _check_lengths(self, data: dict[str, Any]) -> None:
        for name, limit in self.limits.items():
            value = data.get(name)
            # The name and Run as say what they may be in their own checks.
            if name not in ("name", "run_as") and isinstance(value, str) and len(value) > limit:
                label = self.fields[name].label or name
                self.add_error(name, f"{label} has at most {limit} characters (this one has {len(value)}): "
                                     "shorten it, e.g. with a symbolic link to the folder.")

    def _check_engine(self, data: dict[str, Any]) -> None:
        protocol = data.get("protocol")
        if not protocol:
            return
        engine = data.get("engine") or WebApp.DEFAULT_ENGINE[WebApp.Protocol(protocol)]
        data["engine"] = data.get("engine") or ""
        if protocol not in WebApp.ENGINE_PROTOCOLS[WebApp.Engine(engine)]:
            other = "uvicorn" if protocol == WebApp.Protocol.ASGI else "gunicorn"
            self.add_error(
                "engine",
                f"{engine} serves only {'WSGI' if engine == 'gunicorn' else 'ASGI'} applications and this one is "
                f"{protocol.upper()}: choose {other} or granian (granian serves both), or change the protocol type.",
            )
        if data.get("threads") is None and "threads" not in self.errors:
            data["threads"] = DEFAULT_THREADS[protocol]  # blank: the protocol's default
        threads = data.get("threads") or 1
        if protocol == WebApp.Protocol.ASGI and threads > 1:
            self.add_error(
                "threads",
                "An ASGI application runs on one event loop per worker, so threads do not apply: set threads to 1 "
                "and raise workers instead.",
            )

    def _check_overlapping_paths(self, data: dict[str, Any]) -> None:
        path = data.get("name")
        if not path or "name" in self.errors:
            return
        lower = path.lower()
        if self.mounts is not None:
            others = self.mounts.overlapping(path)
        else:
            others = [other.name for other in WebApp.objects.exclude(pk=self.instance.pk).only("name")]
        for other in others:
            o = other.lower()
            if lower.startswith(o + "/"):
                self.add_warning("name", f"{path} is inside {other}: requests under {path} go to this "
                                         f"application, no longer to {other}.")
            elif o.startswith(lower + "/"):
                self.add_warning("name", f"{other} is inside {path}: requests under {other} stay with "
                                         f"{other}; this application gets the rest of {path}.")

    def _check_application(self, data: dict[str, Any]) -> None:
        """Does the module import and is the callable what the protocol says, in the application's own
        interpreter (a subprocess with a timeout)?"""
        python = data.get("python_executable") or sys.executable  # blank: the portal's own
        requirements_file = data.get("requirements_file") or self.found_requirements(data)
        if requirements_file:
            python = self._built_python(data, requirements_file)
            if python is None:
                self.add_warning(
                    "module",
                    "The module is imported once the application's virtualenv is built (at its next start): the "
                    "import check runs then.",
                )
                return
        from webapps import checks

        env = {**(data.get("environment") or {}), **(data.get("secret_environment") or {})}
        # In a merge, lines that import the same module from the same folder with the same
        # interpreter, callable, protocol and variables share one check (a subprocess each, the
        # slowest part of a line). Only the mount (SCRIPT_NAME) differs between them: the check is
        # made under the first line's, as an import that depends on its own mount path is rare.
        key = (python, data["directory"], data["module"], data["callable"], data["protocol"],
               tuple(sorted(env.items())), requirements_file)
        if self.app_checks is not None and key in self.app_checks:
            problem = self.app_checks[key]
        else:
            problem = checks.check_application(
                python=python,
                directory=data["directory"],
                module=data["module"],
                callable_name=data["callable"],
                protocol=data["protocol"],
                env=env,
                timeout=APP_CHECK_TIMEOUT,
                mount=data.get("name") or self.instance.name,
                requirements_file=requirements_file,
                keys=self.fix_keys,
                run_as=data.get("run_as") or "",
                instance=self.instance if self.instance.pk else None,
            )
            if self.app_checks is not None:
                self.app_checks[key] = problem
        if problem:
            self.app_problem = problem
            self.add_error(problem.field, problem.message)

    def _built_python(self, data: dict[str, Any], requirements_file: str) -> str | None:
        """The interpreter of the application's virtualenv when it is built from this very
        requirements file, engine and Python (an edit after a start), else None."""
        from webapps import adapter
        from webapps.runtime.venvs import VenvError, current_venv, venv_state

        if not self.instance.pk:
            return None
        if (data.get("run_as") or "") != (self.instance.run_as or ""):
            return None  # another user: its virtualenv is built again, as that user, at the start
        root = adapter.venv_root(self.instance)
        engine = data.get("engine") or WebApp.DEFAULT_ENGINE[WebApp.Protocol(data["protocol"])]
        try:
            if venv_state(root, requirements_file, engine) != "current":
                return None
        except VenvError:
            return None
        venv = current_venv(root)
        return str(venv.python) if venv else None

    def save(self, commit: bool = True) -> WebApp:
        webapp = super().save(commit=False)
        if commit:
            webapp.save()
        return webapp

    def as_data(self) -> dict[str, Any]:
        """The definition as the form posts it: the CLI edits through this."""
        return definition_data(self.instance)


def definition_data(instance: WebApp) -> dict[str, Any]:
    """A definition as its form posts it (WebAppForm.as_data), without building a form."""
    return {
        "name": instance.name,
        "directory": instance.directory,
        "module": instance.module,
        "callable": instance.callable,
        "protocol": instance.protocol,
        "debug": "on" if instance.debug else "",
        "python_executable": "" if instance.requirements_file else instance.python_executable,
        "requirements_file": instance.requirements_file,
        "engine": instance.engine,
        "workers": str(instance.workers),
        "threads": str(instance.threads),
        "environment": format_assignments(instance.environment or {}),
        "secret_environment": format_assignments(instance.secret_environment or {}, hide_values=True),
        "static_files": format_assignments(instance.static_files or {}),
        "log_file": instance.log_file,
        "restart_policy": instance.restart_policy,
        "init_timeout": str(instance.init_timeout),
        "stop_timeout": str(instance.stop_timeout),
        "namespace": instance.namespace,
        "match_roles": instance.match_roles,
        "run_as": instance.run_as,
        "allow_root": "on" if instance.allow_root else "",
        "hosts": instance.hosts,
    }
