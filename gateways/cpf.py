"""Gateways in merge files: CreateGateway, ModifyGateway, DeleteGateway.

The keys are this portal's own, named after the fields of the gateway form (the product's
"External Language Server" page names them the same way). A merge validates through
GatewayForm and saves through processes.services, so it gets the form's checks and the
history; starting and stopping for ``--restart`` go through processes.control.

A passphrase never appears in a merge file: ``PassphraseFile=PATH`` names a file whose first
line is the passphrase, read by the portal's user on the portal's host. Its content is never
shown, logged or stored: only the verifier the form makes from it.
"""

from __future__ import annotations

import copy
import hmac
from dataclasses import dataclass
from typing import Any

from gateways.models import Gateway
from portal.cpf.registry import Key, Kind, ValueProblem, choice, flag, integer, read_secret_file, shown_value, word_of
from processes.merge import DefinitionMergeAdapter

RESTART_POLICIES = {"never": "never", "on-failure": "on-failure", "always": "always"}
PASSPHRASE_FILE = "PassphraseFile"

KEYS = (
    Key("Name", "name", help="Letters, digits and _ - . %; unique regardless of case; the definition's identity."),
    Key("Server", "server", help="IP address or host name the server listens on (default 127.0.0.1)."),
    Key("Port", "port", integer(1, 65535, 25001), "TCP port, 1 to 65535.", required=True),
    Key("UsePassphrase", "use_passphrase", flag, "1: clients must prove the passphrase; 0: no passphrase."),
    Key(PASSPHRASE_FILE, "", help="Path of a file (on the portal's host) whose first line is the passphrase. "
                                  "Implies UsePassphrase=1.", secret=True),
    Key("AllowNoPassphrase", "allow_no_passphrase", flag,
        "1: it may run without a passphrase (any local user can then run code through it)."),
    Key("AllowUnauthenticatedNetwork", "allow_unauthenticated_network", flag,
        "1: a server beyond loopback may run without a passphrase."),
    Key("LogFile", "log_file", help="Full path of the log file; empty: var/log/gateways/NAME.log."),
    Key("PythonExecutable", "python_executable", help="Full path of Python 3.9+; empty: the portal's own."),
    Key("PythonOptions", "python_options", help="Interpreter options as shell words, e.g. -X dev."),
    Key("ConnectionTimeout", "connection_timeout", integer(2, 300, 5), "Seconds, 2 to 300."),
    Key("InitTimeout", "init_timeout", integer(2, 300, 5), "Seconds, 2 to 300."),
    Key("RestartPolicy", "restart_policy", choice(RESTART_POLICIES), "never, on-failure or always."),
    Key("StopTimeout", "stop_timeout", integer(1, 300, 5), "Seconds, 1 to 300."),
    Key("RunAs", "run_as", help="The user its processes run as when the portal runs as root; empty: a user of "
                                "its own, made by the portal."),
    Key("AllowRoot", "allow_root", flag, "1: RunAs may be root (its code may then do anything on the host)."),
)
FIELD_KEYS = {k.field: k.name for k in KEYS if k.field}
SHOWN_KEYS = [k for k in KEYS if k.field]


def verifies(verifier: str, passphrase: str) -> bool:
    """Does the stored verifier belong to this passphrase? (Then a merge changes nothing.)"""
    from gateways.protocol.handshake import derive_key, parse_verifier

    try:
        iterations, salt, key = parse_verifier(verifier)
    except ValueError:
        return False
    return hmac.compare_digest(derive_key(passphrase, salt, iterations), key)


@dataclass
class Session:
    """One merge's gateways: the names and ports its forms check against, and the rows its
    saves write together at its end."""

    snapshot: Any  # gateways.forms.Snapshot
    batch: Any  # processes.services.Batch
    defaults: dict[str, Any]  # a new definition's form data before its line's keys


def _defaults() -> dict[str, Any]:
    from gateways.forms import GatewayForm

    data = {f: Gateway._meta.get_field(f).get_default() for f in GatewayForm._meta.fields}
    data["python_executable"] = ""
    return data


class GatewayAdapter(DefinitionMergeAdapter):
    model_label = "gateways.Gateway"
    field_keys = FIELD_KEYS
    more_runtime_keys = (PASSPHRASE_FILE,)

    def find_many(self, names: list[str]) -> dict[str, Gateway]:
        from django.db.models.functions import Lower

        wanted = {n.lower() for n in names}
        found: dict[str, Gateway] = {}
        # Chunks: SQLite takes at most 32,766 parameters in one query.
        chunk = sorted(wanted)
        for i in range(0, len(chunk), 5000):
            rows = Gateway.objects.annotate(lname=Lower("name")).filter(lname__in=chunk[i:i + 5000])
            found.update({g.name.lower(): g for g in rows})
        return found

    def session(self) -> Session:
        from gateways.forms import Snapshot
        from processes.services import Batch

        return Session(Snapshot.read(), Batch(Gateway), _defaults())

    def finish(self, session: Session) -> None:
        session.batch.write()

    def form(self, obj: Gateway | None, values: dict[str, Any], quick: bool = False,
             session: Session | None = None) -> Any:
        from gateways.forms import GatewayForm

        fields = GatewayForm._meta.fields
        if obj is not None:
            data = {f: getattr(obj, f) for f in fields}
        else:
            data = dict(session.defaults) if session is not None else _defaults()
        for key in KEYS:
            if key.field and key.name in values:
                data[key.field] = values[key.name]
        data = {f: v for f, v in data.items() if v is not None and v is not False}
        problems: dict[str, list[str]] = {}
        if PASSPHRASE_FILE in values:
            if values.get("UsePassphrase") is False:
                problems[PASSPHRASE_FILE] = ["PassphraseFile is given with UsePassphrase=0: remove one of them."]
            else:
                data["use_passphrase"] = True
                try:
                    passphrase = read_secret_file(values[PASSPHRASE_FILE], "passphrase")
                except ValueProblem as e:
                    problems[PASSPHRASE_FILE] = [str(e)]
                else:
                    # The same passphrase again changes nothing (a new verifier would have a new salt).
                    if not (obj is not None and obj.use_passphrase and obj.passphrase_verifier
                            and verifies(obj.passphrase_verifier, passphrase)):
                        data["passphrase"] = passphrase
        # A copy: the form writes the new values into its instance, and obj is the "before".
        instance = copy.copy(obj) if obj is not None else None
        form = GatewayForm(data, instance=instance, check_ports=False,
                           snapshot=session.snapshot if session is not None else None)
        form.cpf_current = obj
        form.cpf_problems = problems
        return form

    def field_problems(self, form: Any) -> dict[str, list[str]]:
        found: dict[str, list[str]] = dict(getattr(form, "cpf_problems", {}))
        for name, errors in form.errors.items():
            if name == "passphrase" and PASSPHRASE_FILE in found:
                continue  # "Enter a passphrase" only repeats why the file gave none
            key = PASSPHRASE_FILE if name == "passphrase" else FIELD_KEYS.get(name, "")
            found.setdefault(key, []).extend(str(e) for e in errors)
        return found

    def shown(self, obj: Gateway) -> dict[str, str]:
        values = {}
        for key in SHOWN_KEYS:
            value = getattr(obj, key.field)
            if key.field == "restart_policy":
                value = word_of(RESTART_POLICIES, value)
            values[key.name] = shown_value(value)
        return values

    def secret_changes(self, form: Any) -> list[str]:
        return [PASSPHRASE_FILE] if form.cleaned_data.get("passphrase") else []

    def save_kwargs(self, form: Any, session: Session | None) -> dict[str, Any]:
        # The merge's rows are written together at its end (processes.services.Batch).
        return {"current": form.cpf_current, "batch": session.batch} if session is not None else {}

    def saved(self, obj: Gateway, session: Session) -> None:
        session.snapshot.saved(obj)

    def deleted(self, obj: Gateway, session: Session) -> None:
        session.snapshot.deleted(obj.name)

    def export(self, obj: Gateway) -> tuple[list[tuple[str, str]], list[str]]:
        notes = []
        if obj.use_passphrase:
            notes.append(f"{obj.name} uses a passphrase, which is never exported: add "
                         f"{PASSPHRASE_FILE}=/path/to/file to its line before merging it into another portal.")
        return list(self.shown(obj).items()), notes


KIND = Kind("Gateway", "gateway", "gateways", KEYS, GatewayAdapter())


def register() -> None:
    from portal.cpf import registry

    registry.register(KIND)

