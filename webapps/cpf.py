"""Web applications in merge files: CreateApplication, ModifyApplication, DeleteApplication.

Every key of the product's CPF line is read::

    CreateApplication:Name=/flask,NameSpace=IRISAPP,WSGIAppLocation=/irisdev/app/community/,WSGIAppName=app,WSGICallable=app,Type=2,DispatchClass=%SYS.Python.WSGI,MatchRoles=:%ALL,WSGIDebug=0,WSGIType=0

``Type`` must be 2 (a web application) and ``DispatchClass`` %SYS.Python.WSGI: other values
describe applications this portal does not run, and are refused with a message. ``NameSpace``
and ``MatchRoles`` are kept and shown as written: the portal has no namespaces and no IRIS
roles, so they change nothing it does. The other keys are this portal's own (engine, Python,
workers, threads, environment, static files, log, timeouts). One key per entry of a mapping:
``Env.NAME=value``, ``Static./static=/srv/app/static``, and ``SecretEnvFile.NAME=/path`` for a
secret variable, whose value is the first line of that file (never written in a merge file).

The table of keys imports no Django; the adapter (further down) validates through the web
application form and saves through processes.services.
"""

from __future__ import annotations

import copy
from typing import Any

from portal.cpf.registry import (
    Key,
    Kind,
    ValueProblem,
    choice,
    flag,
    integer,
    quoted,
    read_secret_file,
    shown_value,
    word_of,
)
from processes.merge import DefinitionMergeAdapter

WSGI_TYPES = {"0": "wsgi", "1": "asgi"}
ENGINES = {"": "", "gunicorn": "gunicorn", "uvicorn": "uvicorn", "granian": "granian"}
RESTART_POLICIES = {"never": "never", "on-failure": "on-failure", "always": "always"}
WEB_APPLICATION_TYPE = "2"
DISPATCH_CLASS = "%SYS.Python.WSGI"
ENV, SECRET_ENV_FILE, STATIC = "Env.", "SecretEnvFile.", "Static."


def application_type(value: str) -> str:
    if value.strip() != WEB_APPLICATION_TYPE:
        raise ValueProblem(f"Type={quoted(value)[1:-1]} is not a web application: this portal runs only web "
                           f"applications, Type={WEB_APPLICATION_TYPE}. Write Type={WEB_APPLICATION_TYPE}, "
                           "or leave the key out.")
    return WEB_APPLICATION_TYPE


application_type.__doc__ = "2 (a web application)"


def dispatch_class(value: str) -> str:
    if value.strip().lower() != DISPATCH_CLASS.lower():
        raise ValueProblem(f"DispatchClass={quoted(value)[1:-1]} is not a Python web application: this portal "
                           f"runs WSGI and ASGI applications only; write DispatchClass={DISPATCH_CLASS} "
                           "(WSGIType says which), or leave the key out.")
    return DISPATCH_CLASS


dispatch_class.__doc__ = DISPATCH_CLASS


KEYS = (
    Key("Name", "name", help="The URL path the application is served at, e.g. /flask."),
    Key("NameSpace", "namespace", help="Kept and shown; the portal has no namespaces."),
    Key("WSGIAppLocation", "directory", help="Full path of the application's folder.", required=True),
    Key("WSGIAppName", "module", help="The module, without .py (e.g. app, mysite.wsgi).", required=True),
    Key("WSGICallable", "callable", help="The application object in that module (default app)."),
    Key("Type", "", application_type, "2: a web application (the only type the portal runs)."),
    Key("DispatchClass", "", dispatch_class, f"{DISPATCH_CLASS} (the only class the portal runs)."),
    Key("MatchRoles", "match_roles", help="Kept and shown; the portal has no IRIS roles."),
    Key("WSGIDebug", "debug", flag, "1: reload when a file changes; 0: not."),
    Key("WSGIType", "protocol", choice(WSGI_TYPES), "0: WSGI, 1: ASGI."),
    Key("Engine", "engine", choice(ENGINES), "gunicorn, uvicorn or granian; empty: by protocol."),
    Key("PythonExecutable", "python_executable", help="Full path of the interpreter; empty: the portal's own "
                                                      "(or the virtualenv of the folder's requirements.txt)."),
    Key("RequirementsFile", "requirements_file", help="A requirements.txt to build the app's virtualenv from; "
                                                      "empty, with no PythonExecutable: the folder's, if any."),
    Key("Workers", "workers", integer(1, 32, 2), "Worker processes, 1 to 32 (default 2)."),
    Key("Threads", "threads", integer(1, 64, 4), "Threads per worker, 1 to 64 (default 2 for WSGI, 1 for ASGI)."),
    Key("LogFile", "log_file", help="Full path of the log file; empty: var/log/webapps/PATH.log."),
    Key("RestartPolicy", "restart_policy", choice(RESTART_POLICIES), "never, on-failure or always."),
    Key("InitTimeout", "init_timeout", integer(2, 300, 30), "Seconds, 2 to 300."),
    Key("StopTimeout", "stop_timeout", integer(1, 300, 10), "Seconds, 1 to 300."),
    Key("RunAs", "run_as", help="The user its processes run as when the portal runs as root; empty: a user of "
                                "its own, made by the portal."),
    Key("AllowRoot", "allow_root", flag, "1: RunAs may be root (its code may then do anything on the host)."),
    Key("Hosts", "hosts", help="The hosts it runs on, separated by spaces (a comma ends the key), e.g. "
                              "Hosts=web1 web2; empty: the portal's host."),
    Key(ENV, "environment", help="Env.NAME=value: one environment variable (all of them, when any is given)."),
    Key(SECRET_ENV_FILE, "secret_environment",
        help="SecretEnvFile.NAME=/path: a secret variable, read from the file's first line.", secret=True),
    Key(STATIC, "static_files", help="Static./static=/srv/app/static: a sub-path served from a folder."),
)
FIELD_KEYS = {k.field: k.name for k in KEYS if k.field and not k.is_prefix}
MAPPINGS = {"environment": ENV, "static_files": STATIC}


class ApplicationAdapter(DefinitionMergeAdapter):
    """Through WebAppForm (with its import check) and processes.services, as the pages do."""

    field_keys = FIELD_KEYS
    model_label = "webapps.WebApp"
    more_runtime_keys = (ENV, SECRET_ENV_FILE)

    def find(self, name: str) -> Any:
        from django import forms

        from webapps.forms import normalise_path

        try:
            name = normalise_path(name)  # /flask/ is /flask, as the form writes it
        except forms.ValidationError:
            pass  # the form says why, when the line creates it
        return self.model.objects.filter(name__iexact=name).first()

    def find_many(self, names: list[str]) -> dict[str, Any]:
        from django import forms
        from django.db.models.functions import Lower

        from webapps.forms import normalise_path

        stored: dict[str, str] = {}  # the name as given, in lower case -> as the form writes it, in lower case
        for name in names:
            try:
                stored[name.lower()] = normalise_path(name).lower()
            except forms.ValidationError:
                stored[name.lower()] = name.lower()  # as find does
        wanted = sorted(set(stored.values()))
        rows: dict[str, Any] = {}
        for i in range(0, len(wanted), 500):  # SQLite takes a limited number of parameters per query
            query = self.model.objects.annotate(lname=Lower("name")).filter(lname__in=wanted[i:i + 500])
            rows.update({app.name.lower(): app for app in query})
        return {given: rows[lower] for given, lower in stored.items() if lower in rows}

    def session(self) -> Any:
        from webapps.forms import Mounts

        return Mounts.read()

    def form(self, obj: Any, values: dict[str, Any], quick: bool = False, session: Any = None,
             app_checks: dict[Any, Any] | None = None) -> Any:
        from webapps.checks import FixKeys
        from webapps.forms import WebAppForm, definition_data, format_assignments

        # A copy: the form writes the new values into its instance, and obj (read in this merge,
        # which names each definition on one line only) is the "before".
        instance = copy.copy(obj) if obj is not None else None
        data: dict[str, Any] = definition_data(instance) if instance is not None else {
            # Workers and Threads left out take the form's defaults (DEFAULT_WORKERS, DEFAULT_THREADS).
            "protocol": "wsgi", "restart_policy": "on-failure",
            "init_timeout": "30", "stop_timeout": "10", "callable": "app",
        }
        for key in KEYS:
            if key.field and not key.is_prefix and key.name in values:
                value = values[key.name]
                data[key.field] = ("on" if value else "") if isinstance(value, bool) else value
        problems: dict[str, list[str]] = {}
        for field, prefix in MAPPINGS.items():
            given = {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}
            if given:  # the mapping becomes exactly the entries given
                data[field] = format_assignments(given)
        secrets = {k[len(SECRET_ENV_FILE):]: v for k, v in values.items() if k.startswith(SECRET_ENV_FILE)}
        if secrets:
            read = {}
            for name, path in secrets.items():
                try:
                    read[name] = read_secret_file(path, f"value of {name}")
                except ValueProblem as e:
                    problems.setdefault(SECRET_ENV_FILE + name, []).append(str(e))
            data["secret_environment"] = format_assignments(read)
        data = {k: v for k, v in data.items() if v != ""}
        # The import check's message names the keys to add (RequirementsFile=, PythonExecutable=).
        keys = FixKeys(FIELD_KEYS["requirements_file"] + "=", FIELD_KEYS["python_executable"] + "=")
        form = WebAppForm(data, instance=instance, check_app=not quick, app_checks=app_checks, mounts=session,
                          fix_keys=keys)
        form.cpf_problems = problems
        form.cpf_current = obj
        return form

    def precheck(self, obj: Any, values: dict[str, Any], memo: dict[Any, Any] | None = None) -> dict[str, list[str]]:
        # The import check starts the application's interpreter (up to 10 s): outside the
        # transaction. Only its own answer counts here; the other checks run in the transaction.
        # Lines that import the same module the same way share one check (the memo). The paths
        # read once serve only the form's warnings about nested paths, which a precheck drops.
        if memo is not None and "mounts" not in memo:
            from webapps.forms import Mounts

            memo["mounts"] = Mounts.read()
        form = self.form(obj, values, session=memo["mounts"] if memo is not None else None, app_checks=memo)
        form.is_valid()
        if form.app_problem is None:
            return {}
        key = FIELD_KEYS.get(form.app_problem.field, "")
        return {key: [form.app_problem.message]}

    def field_problems(self, form: Any) -> dict[str, list[str]]:
        found: dict[str, list[str]] = dict(getattr(form, "cpf_problems", {}))
        for name, errors in form.errors.items():
            if name == "secret_environment" and any(k.startswith(SECRET_ENV_FILE) for k in found):
                continue
            key = FIELD_KEYS.get(name) or {"environment": ENV + "NAME", "static_files": STATIC + "PATH",
                                           "secret_environment": SECRET_ENV_FILE + "NAME"}.get(name, "")
            found.setdefault(key, []).extend(str(e) for e in errors)
        return found

    def shown(self, obj: Any) -> dict[str, str]:
        from webapps.models import host_names

        values: dict[str, str] = {}
        for key in KEYS:
            if key.name == "Type":
                values[key.name] = WEB_APPLICATION_TYPE
            elif key.name == "DispatchClass":
                values[key.name] = DISPATCH_CLASS
            elif key.is_prefix:
                if key.field in MAPPINGS:
                    for entry, value in (getattr(obj, key.field) or {}).items():
                        values[key.name + entry] = str(value)
            else:
                value = getattr(obj, key.field)
                if key.field == "protocol":
                    value = word_of(WSGI_TYPES, value)
                elif key.field == "hosts":
                    value = " ".join(host_names(value))  # the line's own separator is the comma
                values[key.name] = shown_value(value)
        return values

    def secret_changes(self, form: Any) -> list[str]:
        # The definition as stored, read in this merge's transaction (form()).
        old = {} if not form.instance.pk else dict(form.cpf_current.secret_environment or {})
        after = form.cleaned_data.get("secret_environment") or {}
        return [SECRET_ENV_FILE + n for n in sorted(set(old) | set(after)) if old.get(n) != after.get(n)]

    def saved(self, obj: Any, session: Any) -> None:
        session.saved(obj.name)

    def deleted(self, obj: Any, session: Any) -> None:
        session.deleted(obj.name)

    def export(self, obj: Any) -> tuple[list[tuple[str, str]], list[str]]:
        notes = []
        if obj.secret_environment:
            names = ", ".join(sorted(obj.secret_environment))
            notes.append(f"{obj.name} has secret variables ({names}), which are never exported: add "
                         f"{SECRET_ENV_FILE}NAME=/path/to/file for each to its line before merging it elsewhere.")
        return list(self.shown(obj).items()), notes


KIND = Kind("Application", "application", "applications", KEYS, ApplicationAdapter(), heading="web applications")


def register() -> None:
    from portal.cpf import registry

    registry.register(KIND)
