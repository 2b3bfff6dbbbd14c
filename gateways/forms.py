"""The gateway definition form. The CLI validates through this same form."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import forms
from django.core.validators import MaxLengthValidator
from django.db.models.functions import Lower
from django.urls import get_script_prefix, reverse
from django.utils.html import format_html

from gateways.models import Gateway
from gateways.runtime import WILDCARDS, servers_overlap
from processes.accounts import RUN_AS_ERRORS, check_run_as
from processes.forms import FieldFeedback, check_log_file_field, check_python_executable

NAME_RE = re.compile(r"^[A-Za-z0-9_\-.%]+$")
# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
MIN_PASSPHRASE = 8
# Path segments of the gateway pages that a gateway's name must not shadow.
RESERVED_NAMES = {"new", "validate", "rows"}
MAX_PORT = 65535
MAX_OPTIONS = Gateway._meta.get_field("python_options").max_length
# A save (and each inline check) waits this long for the name server, then says it did not answer.
RESOLVE_TIMEOUT = 2.0
EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
# getaddrinfo cannot be given a timeout or be cancelled, so it runs in a thread that the
# form stops waiting for; a few threads are enough, and a stuck one does not hold a request.


def resolve(host: str, timeout: float = RESOLVE_TIMEOUT) -> tuple[set[str], str]:
    """The addresses of ``host``, or an empty set and a warning that says why none were found."""
    from portal.process.checks import ResolveError, resolve_host

    try:
        return resolve_host(host, timeout=timeout), ""
    except ResolveError as e:
        if e.definite:
            return set(), (
                f"{host} does not resolve on this host ({e.reason}): the gateway cannot start with it. "
                "Check the spelling, add the name to DNS or /etc/hosts, or use an IP address such as 127.0.0.1."
            )
        why = e.reason.replace("no answer from the name service within", "no answer within")
        return set(), (
            f"Name resolution is unavailable on this host ({why}), so whether {host} resolves could not be "
            "checked: check /etc/resolv.conf and the name server, or use an IP address."
        )


def ephemeral_range(path: str = EPHEMERAL_RANGE_FILE) -> tuple[int, int] | None:
    """The kernel's range of ports for outgoing connections, or None where it cannot be read."""
    try:
        low, high = (int(x) for x in Path(path).read_text().split())
    except (OSError, ValueError):
        return None
    return low, high


# The interpreter's flags that take no argument and leave the program alone (python --help);
# -c, -m, -i, -h and -V would run something else than the gateway server, or nothing at all.
_PLAIN_FLAGS = set("bBdEIOPqsSuvx")
_FLAGS_WITH_VALUE = {"-W", "-X", "--check-hash-based-pycs"}


def _not_an_interpreter_option(words: list[str]) -> str:
    """Why ``words`` are not only interpreter options, or "" when they are."""
    expect_value = False
    for word in words:
        if expect_value:
            expect_value = False
            continue
        if word in _FLAGS_WITH_VALUE:
            expect_value = True
        elif word.startswith(("-W", "-X", "--check-hash-based-pycs=")):
            continue
        elif not word.startswith("-") or word in ("-", "--"):
            return f"“{word}” is not an interpreter option (it would be taken as the program to run)"
        elif word.startswith("--") or not set(word[1:]) <= _PLAIN_FLAGS:
            return f"“{word}” would run something other than the gateway server"
    if expect_value:
        return f"“{words[-1]}” needs a value"
    return ""


@dataclass
class Snapshot:
    """What the form's checks ask the database and the host, read once for many forms.

    A merge validates hundreds of definitions in one transaction under its lock: nobody else
    changes the gateways meanwhile, so the names and the ports in use are read once, and the
    merge tells the snapshot what each save changes (:meth:`saved`, :meth:`deleted`). The
    same checks run on it as on the database (one code path); host checks that do not depend
    on the definition (the same interpreter, the same server name) are answered once.
    """

    names: dict[str, str] = dataclasses.field(default_factory=dict)  # lower case -> name
    # port -> {lower name: (server, name)}
    ports: dict[int, dict[str, tuple[str, str]]] = dataclasses.field(default_factory=dict)
    port_of: dict[str, int] = dataclasses.field(default_factory=dict)  # lower name -> port
    memo: dict[Any, tuple[bool, Any]] = dataclasses.field(default_factory=dict)

    @classmethod
    def read(cls) -> Snapshot:
        snapshot = cls()
        for name, server, port in Gateway.objects.values_list("name", "server", "port"):
            snapshot.names[name.lower()] = name
            snapshot.ports.setdefault(port, {})[name.lower()] = (server, name)
            snapshot.port_of[name.lower()] = port
        return snapshot

    def deleted(self, name: str) -> None:
        self.names.pop(name.lower(), None)
        port = self.port_of.pop(name.lower(), None)
        if port is not None:
            self.ports[port].pop(name.lower(), None)

    def saved(self, gateway: Gateway) -> None:
        self.deleted(gateway.name)
        self.names[gateway.name.lower()] = gateway.name
        self.ports.setdefault(gateway.port, {})[gateway.name.lower()] = (gateway.server, gateway.name)
        self.port_of[gateway.name.lower()] = gateway.port

    def name_clash(self, name: str) -> str | None:
        return self.names.get(name.lower())

    def port_users(self, port: int, exclude: str | None) -> list[tuple[str, str]]:
        """(server, name) of the definitions on ``port``, in the order of the database's query."""
        users = self.ports.get(port, {})
        return [users[k] for k in sorted(users) if k != exclude]

    def once(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``'s value, or its ValidationError, computed once per snapshot."""
        if key not in self.memo:
            try:
                self.memo[key] = (True, compute())
            except forms.ValidationError as e:
                self.memo[key] = (False, e)
        ok, value = self.memo[key]
        if not ok:
            raise value
        return value


# The fields whose checks (the form field's clean, then clean_<name>) depend on their own value
# only: not on the instance, the snapshot or another field. Within one merge (one snapshot) a
# value of these is checked once and its cleaned value reused, as the host checks are: a merge's
# lines mostly repeat the same values. The name, port, log file (its default depends on the
# name) and passphrase (a secret, never kept) are checked for each form.
VALUE_ONLY_FIELDS = frozenset({
    "type", "server", "use_passphrase", "allow_no_passphrase", "allow_unauthenticated_network", "python_executable",
    "python_options", "connection_timeout", "init_timeout", "restart_policy", "stop_timeout",
})
_MEMO_TYPES = (str, int, bool, type(None))


@functools.lru_cache(maxsize=8)
def _validate_url(prefix: str) -> str:
    """The inline validation's URL: the same for every form under one script prefix (a merge
    makes a form per line, and reverse() was a tenth of each)."""
    return reverse("gateways:validate")


class GatewayForm(FieldFeedback, forms.ModelForm):
    passphrase = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=f"At least {MIN_PASSPHRASE} characters. Stored only as a salted PBKDF2 key.",
    )

    class Meta:
        model = Gateway
        error_messages = RUN_AS_ERRORS
        help_texts = {"log_file": "Full path of a new file in var/log/ (or a folder set in PORTAL_LOG_ROOTS). "
                                  "Blank: var/log/gateways/NAME.log."}
        fields = [
            "type",
            "name",
            "server",
            "port",
            "use_passphrase",
            "allow_no_passphrase",
            "allow_unauthenticated_network",
            "log_file",
            "python_executable",
            "python_options",
            "connection_timeout",
            "init_timeout",
            "restart_policy",
            "stop_timeout",
            "run_as",
            "allow_root",
        ]

    def feedback(self, field: str) -> tuple[list[str], list[str]]:
        errors, warnings = super().feedback(field)
        if field in {"server", "use_passphrase"}:
            # Warnings of the whole definition (e.g. every address without a passphrase).
            bound = [w for ws in self.field_warnings.values() for w in ws]
            warnings += [w for w in self.warnings if w not in bound]
        return errors, warnings

    def __init__(self, *args: Any, check_ports: bool = True, snapshot: Snapshot | None = None,
                 **kwargs: Any) -> None:
        # A merge's forms share their fields: Django deep-copies the class's fields for each form
        # (half of a form's cost) so that one form's changes do not reach another, but the fields
        # below differ only by whether the instance is saved and has a passphrase, and nothing
        # changes them after __init__ (a merge's forms are validated, never rendered).
        instance = kwargs.get("instance")
        shared_key = ("fields", bool(instance and instance.pk), bool(instance and instance.passphrase_verifier))
        shared = snapshot.memo.get(shared_key) if snapshot is not None else None
        if shared is not None:
            self.base_fields = {}  # nothing to copy: the shared fields come below
        super().__init__(*args, **kwargs)
        # A merge's snapshot of the names and ports in use (see Snapshot); None: ask the database.
        self.snapshot = snapshot
        # Whether to look for a process holding the port now (psutil, ~50 ms): a merge of many
        # definitions skips it, and the start reports a held port with its holder anyway.
        self.check_ports = check_ports
        # Warnings do not block a save: all of them in order, and those of each field.
        self.warnings: list[str] = []
        self.field_warnings: dict[str, list[str]] = {}
        if shared is not None:
            self.fields = shared[1]
            return
        self._customize_fields()
        if snapshot is not None:
            snapshot.memo[shared_key] = (True, self.fields)

    def _customize_fields(self) -> None:
        validate_url = _validate_url(get_script_prefix())
        for name, field in self.fields.items():
            # Inline validation: on change, post the whole form and put this
            # field's messages in its feedback box. Without JS, Save validates.
            field.widget.attrs.update(
                {
                    "hx-post": validate_url,
                    "hx-trigger": "change",
                    "hx-include": "closest form",
                    "hx-target": f"#feedback-{name}",
                    "hx-swap": "innerHTML",
                }
            )
        self.fields["python_executable"].required = False
        self.fields["type"].required = False
        # One message for every out-of-range port (clean_port), not Django's "greater than or equal to 0".
        self.fields["port"].validators = []
        self.fields["port"].widget.attrs.update({"min": 1, "max": MAX_PORT})
        self.fields["port"].error_messages.update(
            {
                "invalid": "Enter the port as a whole number from 1 to 65535.",
                "required": "A port is required: choose a free TCP port from 1 to 65535, e.g. 25001.",
            }
        )
        self.fields["name"].error_messages["required"] = (
            "A name is required: letters, digits and _ - . %, e.g. PyGate."
        )
        self.fields["server"].error_messages["required"] = (
            "A server is required: an IP address such as 127.0.0.1, or a host name."
        )
        self.fields["name"].error_messages["max_length"] = (
            "A gateway name has at most %(limit_value)d characters (this one has %(show_value)d): shorten it."
        )
        self.fields["server"].error_messages["max_length"] = (
            "A host name has at most %(limit_value)d characters (this one has %(show_value)d): "
            "check it, or use the host's IP address."
        )
        if self.instance.pk:
            # The name identifies the definition; it cannot change once saved.
            self.fields["name"].disabled = True
            if self.instance.passphrase_verifier:
                self.fields["passphrase"].help_text = (
                    "A passphrase is set. Leave blank to keep the current one."
                )

        # The examples as code, each kept on one line (.help code): the model's text is plain.
        self.fields["python_options"].help_text = format_html(
            "Extra interpreter options, written as shell words (e.g. <code>{}</code>). Never run through a shell.",
            "-X dev -W error")
        # Counted and refused with a message (clean_python_options), not cut by the browser.
        self.fields["python_options"].widget.attrs.pop("maxlength", None)
        options = self.fields["python_options"]
        options.max_length = None
        options.validators = [v for v in options.validators if not isinstance(v, MaxLengthValidator)]

    # Field checks: each message says what is wrong and how to fix it.

    def clean_port(self) -> int | None:
        port = self.cleaned_data.get("port")
        if port is not None and not 1 <= port <= MAX_PORT:
            raise forms.ValidationError(
                "Port %(port)s is out of range: choose a port from 1 to 65535, e.g. 25001.",
                params={"port": port},
            )
        return port

    def clean_type(self) -> str:
        return self.cleaned_data.get("type") or Gateway.Type.PYTHON

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if self.instance.pk:
            return self.instance.name
        if not NAME_RE.match(name):
            raise forms.ValidationError(
                "“%(name)s” has characters a gateway name cannot have: use only letters, "
                "digits and _ - . %% (no spaces).",
                params={"name": name},
            )
        if name in (".", ".."):
            raise forms.ValidationError(
                "“%(name)s” cannot be a gateway name: browsers and HTTP clients remove “.” and “..” from "
                "addresses, so its pages and API could not be reached. Choose a name with a letter or a "
                "digit, e.g. PyGate.",
                params={"name": name},
            )
        if name.lower() in RESERVED_NAMES:
            raise forms.ValidationError(
                "“%(name)s” is reserved by the portal's pages: choose another name.",
                params={"name": name},
            )
        if self.snapshot is not None:
            clash = self.snapshot.name_clash(name)
        else:
            found = Gateway.objects.annotate(lname=Lower("name")).filter(lname=name.lower()).first()
            clash = found.name if found else None
        if clash:
            raise forms.ValidationError(
                "A gateway named %(other)s already exists (names are unique regardless of "
                "case): choose another name.",
                params={"other": clash},
            )
        return name

    def clean_server(self) -> str:
        server = self.cleaned_data["server"].strip()
        try:
            return str(ipaddress.ip_address(server))
        except ValueError:
            pass
        if not HOSTNAME_RE.match(server) or server.replace(".", "").isdigit():
            raise forms.ValidationError(
                "“%(server)s” is neither an IP address nor a host name: use e.g. 127.0.0.1, "
                "0.0.0.0 (every address of the host) or gw1.example.com.",
                params={"server": server},
            )
        return server.lower()

    def clean_python_executable(self) -> str:
        path = (self.cleaned_data.get("python_executable") or "").strip()
        if not path:
            return ""  # the portal's own, resolved at each start (ManagedProcess.interpreter)
        if self.snapshot is not None:
            return self.snapshot.once(("python_executable", path), lambda: check_python_executable(path))
        return check_python_executable(path)

    def clean_python_options(self) -> str:
        options = self.cleaned_data.get("python_options", "").strip()
        if len(options) > MAX_OPTIONS:
            raise forms.ValidationError(
                "Python options may have at most %(limit)d characters; these have %(length)d: "
                "remove options, or put settings into environment variables or a file the server reads.",
                params={"limit": MAX_OPTIONS, "length": len(options)},
            )
        try:
            words = shlex.split(options)
        except ValueError as e:
            raise forms.ValidationError(
                "Python options cannot be read as shell words (%(error)s): close the quote "
                "or escape it with a backslash.",
                params={"error": str(e).lower()},
            ) from None
        problem = _not_an_interpreter_option(words)
        if problem:
            raise forms.ValidationError(
                "%(problem)s: Python options are the interpreter's own, placed before “-m gateways.server” "
                "(such as -X dev, -O, -u or -W error). Remove it.",
                params={"problem": problem},
            )
        return options

    def clean_log_file(self) -> str:
        from gateways import runtime

        path = self.cleaned_data.get("log_file", "").strip()
        if not path:
            return ""
        example = runtime.default_log_path(self.instance).parent.parent / "pygate.log"  # var/log/pygate.log
        return check_log_file_field(path, example, lambda p: runtime.log_file_problem(self.instance, p))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        check_run_as(self, data)
        python = data.get("python_executable")
        if python and not self.has_error("python_executable"):
            from processes.forms import interpreter_problem

            memo = self.snapshot.memo if self.snapshot is not None else None
            problem = interpreter_problem("gateway", python, self.instance, data.get("run_as") or "", memo)
            if problem:
                self.add_error("python_executable", problem)
        server, port = data.get("server"), data.get("port")
        if server and port:
            if self.snapshot is not None:
                own = self.instance.name.lower() if self.instance.pk else None
                others = self.snapshot.port_users(port, exclude=own)
            else:
                others = [(g.server, g.name) for g in Gateway.objects.filter(port=port).exclude(pk=self.instance.pk)]
            for other_server, other_name in others:
                if servers_overlap(other_server, server):
                    self.add_error(
                        "port",
                        forms.ValidationError(
                            "Port %(port)s on %(server)s is already used by gateway %(other)s: "
                            "choose another port, or change %(other)s first.",
                            params={"port": port, "server": other_server, "other": other_name},
                        ),
                    )
                    break
        use_passphrase = data.get("use_passphrase")
        passphrase = data.get("passphrase") or ""
        if passphrase and not use_passphrase:
            # Saved as it is, the definition would drop the passphrase and run without one.
            self.add_error(
                "passphrase",
                "A passphrase is typed but “Use passphrase” is unticked, so it would not be used: tick “Use "
                "passphrase” to protect the gateway with it, or clear the passphrase field.",
            )
        elif use_passphrase:
            has_current = bool(self.instance.pk and self.instance.passphrase_verifier)
            if not passphrase and not has_current:
                self.add_error(
                    "passphrase",
                    "Enter a passphrase, or untick “Use passphrase”.",
                )
            elif passphrase and len(passphrase) < MIN_PASSPHRASE:
                self.add_error(
                    "passphrase",
                    f"The passphrase is too short: use at least {MIN_PASSPHRASE} characters.",
                )
        if server and port and not self.has_error("server") and not self.has_error("port"):
            self._warn_about_host_and_port(server, port)
        self._check_no_passphrase(data)
        self._check_network_exposure(data)
        return data

    def _check_no_passphrase(self, data: dict[str, Any]) -> None:
        """Without a passphrase every local user can run code through it: only when ticked. The
        tick belongs to a definition without one, so a passphrase clears it (removing the passphrase
        later asks again)."""
        from gateways.exposure import check_no_passphrase
        from processes.accounts import who

        if data.get("use_passphrase"):
            data["allow_no_passphrase"] = False
            return
        if data.get("allow_no_passphrase") or self.has_error("allow_no_passphrase"):
            return
        runs_as = who("gateway", self.instance if self.instance.pk else None, data.get("run_as"))
        failure = check_no_passphrase(data.get("server") or "", data.get("port"), False, False, runs_as)
        if failure is not None:
            self.add_error("allow_no_passphrase", failure.message)

    def _check_network_exposure(self, data: dict[str, Any]) -> None:
        """Beyond loopback a gateway needs a passphrase, unless an administrator allows it."""
        from gateways.exposure import check_network_exposure

        server = data.get("server")
        if not server:
            return
        allowed = bool(data.get("allow_unauthenticated_network"))
        failure = check_network_exposure(server, bool(data.get("use_passphrase")), allowed)
        if failure is not None:
            self.add_error("use_passphrase", failure.message)
        elif allowed and check_network_exposure(server, bool(data.get("use_passphrase")), False):
            self.add_warning(
                "server",
                f"{server} accepts connections from the network without a passphrase: anyone who can "
                "reach the port can run code as its user. Tick “Use passphrase”, or use 127.0.0.1."
            )

    def _warn_about_host_and_port(self, server: str, port: int) -> None:
        """What would make a start fail although the definition is valid: warned, not refused."""
        from portal.process import checks

        try:
            addresses = {str(ipaddress.ip_address(server))}
        except ValueError:
            if self.snapshot is not None:
                addresses, problem = self.snapshot.once(("resolve", server), lambda: resolve(server))
            else:
                addresses, problem = resolve(server)
            if problem:
                self.add_warning("server", problem)
        span = self.snapshot.once("ephemeral", ephemeral_range) if self.snapshot is not None else ephemeral_range()
        if span and span[0] <= port <= span[1]:
            self.add_warning(
                "port",
                f"Port {port} is in this host's range for outgoing connections ({span[0]}–{span[1]}, "
                f"{EPHEMERAL_RANGE_FILE}): any program's outgoing connection may hold it when the gateway "
                f"starts. Prefer a port below {span[0]}.",
            )
        from gateways.runtime import defined_ports, portal_ports

        host = server if server in WILDCARDS or not addresses else sorted(addresses)[0]
        reserved = portal_ports(server)

        def taken() -> set[int]:
            """What a suggested port is not: the definitions' ports and the portal's (it is also free now)."""
            return (set(self.snapshot.ports) if self.snapshot is not None else defined_ports()) | set(reserved)

        if port in reserved:
            # Whether or not the portal runs now (and in a merge too): make run listens there whenever it does.
            self.add_warning(
                "port",
                f"Port {port} on {server} is {reserved[port]}: the gateway cannot start while the portal runs. "
                f"{checks.port_advice(host, port, taken()).capitalize()}.",
            )
            return
        if not self.check_ports:
            return
        # Its own running server holds the port: that is no conflict.
        own = self.instance.pk and self.instance.is_active and (self.instance.server, self.instance.port) == (
            server, port)
        local = server in WILDCARDS or bool(addresses & (checks.local_addresses() | {"127.0.0.1", "::1"}))
        if own or not local:
            return
        holder = checks.port_holder(host, port)
        if holder is not None:
            pid, name = holder
            who = f"pid {pid} ({name})" if pid is not None else "a program the portal cannot see"
            self.add_warning(
                "port",
                f"Port {port} on {server} is in use now by {who}: the gateway cannot start while it is. "
                f"Stop that program, or {checks.port_advice(host, port, taken())}.",
            )

    def _clean_fields(self) -> None:
        if self.snapshot is None:
            super()._clean_fields()
            return
        # Django's loop (BaseForm._clean_fields), with the value-only fields' answers taken from
        # the merge's memo when the same value was cleaned before (VALUE_ONLY_FIELDS). Only a value
        # that passed is kept: a refused one goes through the checks again and gets its message.
        memo = self.snapshot.memo
        for name, field in self.fields.items():
            key = None
            if name in VALUE_ONLY_FIELDS and not field.disabled:
                raw = self._widget_data_value(field.widget, self.add_prefix(name))
                if isinstance(raw, _MEMO_TYPES):
                    key = ("clean", name, type(raw), raw)
                    if key in memo:
                        self.cleaned_data[name] = memo[key]
                        continue
            try:
                self.cleaned_data[name] = field._clean_bound_field(self[name])
                if hasattr(self, f"clean_{name}"):
                    self.cleaned_data[name] = getattr(self, f"clean_{name}")()
            except forms.ValidationError as e:
                self.add_error(name, e)
                continue
            if key is not None:
                memo[key] = self.cleaned_data[name]

    def _model_checks(self) -> dict[str, tuple[Any, ...]]:
        """The memo's keys for "the model's own checks of this field passed with this value"."""
        keys = {}
        for name in VALUE_ONLY_FIELDS:
            value = self.cleaned_data.get(name)
            if isinstance(value, _MEMO_TYPES):
                keys[name] = ("model", name, type(value), value)
        return keys

    def _get_validation_exclusions(self) -> set[str]:
        if self.snapshot is None:
            return super()._get_validation_exclusions()
        # Called twice per form (before the model's checks and by validate_unique): the second
        # call gives the same answer unless the model's checks added errors.
        errors = frozenset(self._errors)
        cached = getattr(self, "_exclusions", None)
        if cached is not None and cached[0] == errors:
            return set(cached[1])
        exclude = super()._get_validation_exclusions()
        # clean_name checked the name against the snapshot, which is the database under the
        # merge's lock: the model's unique checks of the name (two queries) would repeat it.
        # The form field checks its length; clean_name its characters.
        exclude.add("name")
        # A value-only field whose value passed the model's field checks earlier in this merge
        # passes them again (Model.clean_fields checks each field on its own); the model has no
        # constraint or unique check on these fields that an exclusion would skip.
        memo = self.snapshot.memo
        exclude.update(name for name, key in self._model_checks().items() if key in memo)
        self._exclusions = (errors, frozenset(exclude))
        return exclude

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.snapshot is not None:
            for name, key in self._model_checks().items():
                if name not in self._errors:
                    self.snapshot.memo[key] = True

    def save(self, commit: bool = True) -> Gateway:
        gateway = super().save(commit=False)
        passphrase = self.cleaned_data.get("passphrase") or ""
        if not gateway.use_passphrase:
            gateway.passphrase_verifier = ""
        elif passphrase:
            from gateways.protocol import make_verifier

            gateway.passphrase_verifier = make_verifier(passphrase)
        if commit:
            gateway.save()
        return gateway
