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
application form and saves through webapps.services.
"""

from __future__ import annotations

from typing import Any

from portal.cpf.registry import Adapter, Key, Kind, ValueProblem, choice, flag, integer, word_of

WSGI_TYPES = {"0": "wsgi", "1": "asgi"}
ENGINES = {"": "", "gunicorn": "gunicorn", "uvicorn": "uvicorn", "granian": "granian"}
RESTART_POLICIES = {"never": "never", "on-failure": "on-failure", "always": "always"}
WEB_APPLICATION_TYPE = "2"
DISPATCH_CLASS = "%SYS.Python.WSGI"
ENV, SECRET_ENV_FILE, STATIC = "Env.", "SecretEnvFile.", "Static."


def application_type(value: str) -> str:
    if value.strip() != WEB_APPLICATION_TYPE:
        raise ValueProblem(f"Type={value} is not a web application: this portal runs only web applications, "
                           f"Type={WEB_APPLICATION_TYPE}. Write Type={WEB_APPLICATION_TYPE}, or leave the key out.")
    return WEB_APPLICATION_TYPE


application_type.__doc__ = "2 (a web application)"


def dispatch_class(value: str) -> str:
    if value.strip().lower() != DISPATCH_CLASS.lower():
        raise ValueProblem(f"DispatchClass={value} is not a Python web application: this portal runs WSGI and "
                           f"ASGI applications only; write DispatchClass={DISPATCH_CLASS} (WSGIType says which), "
                           "or leave the key out.")
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
    Key("PythonExecutable", "python_executable", help="Full path of the interpreter; empty: the portal's."),
    Key("RequirementsFile", "requirements_file", help="A requirements.txt to build the app's virtualenv from."),
    Key("Workers", "workers", integer(1, 32, 2), "Worker processes, 1 to 32."),
    Key("Threads", "threads", integer(1, 64, 4), "Threads per worker, 1 to 64."),
    Key("LogFile", "log_file", help="Full path of the log file; empty: var/log/webapps/PATH.log."),
    Key("RestartPolicy", "restart_policy", choice(RESTART_POLICIES), "never, on-failure or always."),
    Key("InitTimeout", "init_timeout", integer(2, 300, 30), "Seconds, 2 to 300."),
    Key("StopTimeout", "stop_timeout", integer(1, 300, 10), "Seconds, 1 to 300."),
    Key(ENV, "environment", help="Env.NAME=value: one environment variable (all of them, when any is given)."),
    Key(SECRET_ENV_FILE, "secret_environment",
        help="SecretEnvFile.NAME=/path: a secret variable, read from the file's first line."),
    Key(STATIC, "static_files", help="Static./static=/srv/app/static: a sub-path served from a folder."),
)
FIELD_KEYS = {k.field: k.name for k in KEYS if k.field and not k.is_prefix}
MAPPINGS = {"environment": ENV, "static_files": STATIC}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


class ApplicationAdapter(Adapter):
    """Filled in once the web application model and form exist (see register())."""


KIND = Kind("Application", "application", "applications", KEYS, ApplicationAdapter())
__all__ = ["KEYS", "KIND", "WSGI_TYPES", "_text", "word_of"]
