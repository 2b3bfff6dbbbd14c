"""``manage.py webapp``: web application definitions from scripts.

    webapp create PATH --directory DIR --module MOD [--callable NAME] [--type wsgi|asgi]
                  [--python PATH | --requirements FILE] [--debug] [--engine gunicorn|uvicorn|granian]
                  [--workers N] [--threads N] [--env NAME=VALUE]... [--secret-env-file FILE]
                  [--static SUBPATH=DIR]... [--log-file F] [--restart-policy P]
                  [--init-timeout S] [--stop-timeout S]
    webapp edit PATH [the same options] [--no-debug] [--unset-env NAME]... [--unset-static SUBPATH]...
                [--restart]
    webapp list [--json]
    webapp show PATH [--json]
    webapp delete PATH
    webapp start|stop|restart PATH [--wait] [--timeout S]
    webapp status PATH [--json]
    webapp nginx-config [--server-name NAME] [--listen PORT] [--edge]

Creation and edits go through the same form as the page, so a bad value gives the same
message (and exit code 1). Secret variables are read from a file of NAME=value lines
(``-`` reads standard input), never from the command line, where ``ps`` would show them to
every local user; a secret's value is never printed.

Who acts: ``--user NAME`` acts as that portal user, with that user's role; without it, the
local operator ("cli:<os user>") with administrator rights, as for ``manage.py gateway``.
"""

from __future__ import annotations

from argparse import ArgumentParser, BooleanOptionalAction
from typing import Any

from django.core.management.base import CommandError

from processes import services
from processes.cli import DefinitionCommand, add_restart_option, save_and_report
from processes.forms import error_lines, options_of
from webapps import nginx_command
from webapps.adapter import python_of
from webapps.checks import FixKeys
from webapps.forms import WebAppForm, format_assignments
from webapps.models import WebApp

# The fields this command fills from options of other names (the rest: processes.forms.options_of
# reads each option's field from the parser).
FILLED_BY = {
    "name": "PATH",
    "environment": "--env",
    "secret_environment": "--secret-env-file",
    "static_files": "--static",
}
# How the import check's messages name the options that give the application its packages.
FIX_KEYS = FixKeys(requirements_file="--requirements ", python_executable="--python ")


def webapp_as_dict(webapp: WebApp) -> dict[str, Any]:
    """The definition as the CLI shows it; secret variables by name only."""
    return {
        "path": webapp.name,
        "directory": webapp.directory,
        "module": webapp.module,
        "callable": webapp.callable,
        "type": webapp.protocol,
        "debug": webapp.debug,
        "python_executable": webapp.python_executable,
        "requirements_file": webapp.requirements_file,
        # What runs it: the file its virtualenv is built from (the folder's requirements.txt when
        # none is named) and the interpreter (that virtualenv's, the one named, or the portal's).
        "requirements": webapp.requirements,
        "interpreter": python_of(webapp),
        "engine": webapp.engine_name,
        "workers": webapp.workers,
        "threads": webapp.threads,
        "environment": webapp.environment,
        "secret_environment": sorted(webapp.secret_environment or {}),
        "static_files": webapp.static_files,
        "namespace": webapp.namespace,
        "match_roles": webapp.match_roles,
        "log_file": webapp.log_file,
        "restart_policy": webapp.restart_policy,
        "init_timeout": webapp.init_timeout,
        "stop_timeout": webapp.stop_timeout,
        "run_as": webapp.run_as,
        "allow_root": webapp.allow_root,
        "state": webapp.shown_state,
        "created_at": webapp.created_at.isoformat(),
        "changed_at": webapp.changed_at.isoformat(),
    }


def _definition_options(parser: ArgumentParser, creating: bool) -> None:
    parser.add_argument("path", help="the URL path, e.g. /flask")
    parser.add_argument("--directory", required=creating, help="the application directory (full path)")
    parser.add_argument("--module", required=creating, help="the module, without .py (e.g. app, mysite.wsgi)")
    parser.add_argument("--callable", help="the callable name (default app)")
    parser.add_argument("--type", dest="protocol", choices=[c.value for c in WebApp.Protocol],
                        help="the protocol type (default wsgi)")
    parser.add_argument("--python", dest="python_executable", help="the Python executable (default the portal's)")
    parser.add_argument("--requirements", dest="requirements_file",
                        help="a requirements file: the portal builds the application's own virtualenv from it")
    parser.add_argument("--debug", action=BooleanOptionalAction, default=None,
                        help="reload when a .py file or template changes")
    parser.add_argument("--engine", choices=[c.value for c in WebApp.Engine],
                        help="gunicorn (WSGI), uvicorn (ASGI) or granian (both)")
    parser.add_argument("--workers", help="worker processes, 1 to 32")
    parser.add_argument("--threads", help="threads per worker (WSGI), 1 to 64")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable (repeat for more)")
    parser.add_argument("--secret-env-file", metavar="FILE",
                        help="secret variables, one NAME=VALUE per line, from a file ('-' reads standard input)")
    parser.add_argument("--static", action="append", default=[], metavar="SUBPATH=DIR",
                        help="static files the front serves at PATH/SUBPATH from DIR (repeat for more)")
    parser.add_argument("--log-file")
    parser.add_argument("--restart-policy", choices=[c.value for c in WebApp.RestartPolicy])
    parser.add_argument("--init-timeout", help="seconds to be ready, 2 to 300")
    parser.add_argument("--stop-timeout", help="seconds between asking it to stop and killing it, 1 to 300")
    parser.add_argument("--run-as", metavar="USER",
                        help="the user it runs as when the portal runs as root (empty: a user of its own)")
    parser.add_argument("--allow-root", action=BooleanOptionalAction, default=None, help="let --run-as be root")
    parser.add_argument("--hosts", metavar="HOST,HOST",
                        help="the hosts it runs on, e.g. web1,web2 (each runs a process group of its own); "
                        "empty: the portal's host")
    if not creating:
        parser.add_argument("--unset-env", action="append", default=[], metavar="NAME",
                            help="remove a variable, plain or secret (repeat for more)")
        parser.add_argument("--unset-static", action="append", default=[], metavar="SUBPATH",
                            help="remove a static mapping (repeat for more)")
        add_restart_option(parser, "web application")


class Command(DefinitionCommand):
    help = "Create, edit, list, show and delete web application definitions; start, stop and restart them."
    kind = "webapp"
    arg = "path"
    missing = "There is no web application at {name!r}: `manage.py webapp list` shows the paths."
    list_columns = (("PATH", lambda w: w.name), ("TYPE", lambda w: w.get_protocol_display()),
                    ("ENGINE", lambda w: w.engine_name), ("STATE", lambda w: w.shown_state),
                    ("DIRECTORY", lambda w: w.directory))
    empty = ("No web applications are defined. Create one with "
             "`manage.py webapp create /PATH --directory DIR --module MODULE`.")

    def as_dict(self, obj: WebApp) -> dict[str, Any]:
        return webapp_as_dict(obj)

    def add_definition_parsers(self, sub: Any) -> None:
        self.parsers.update({"create": sub.add_parser("create", help="create a definition"),
                             "edit": sub.add_parser("edit", help="change a definition")})
        _definition_options(self.parsers["create"], creating=True)
        _definition_options(self.parsers["edit"], creating=False)
        nginx_command.add_parser(sub)

    # Definitions ------------------------------------------------------------------------

    def _form_data(self, options: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        _absolute_paths(options)
        for field in ("directory", "module", "callable", "protocol", "python_executable", "requirements_file",
                      "engine", "workers", "threads", "log_file", "restart_policy", "init_timeout",
                      "stop_timeout", "run_as", "hosts"):
            if options.get(field) is not None:
                data[field] = options[field]
        if options.get("allow_root") is not None:
            data["allow_root"] = "on" if options["allow_root"] else ""
        if options.get("python_executable") and options.get("requirements_file") is None:
            data["requirements_file"] = ""  # --python replaces a requirements file
        if options.get("requirements_file") and options.get("python_executable") is None:
            data["python_executable"] = ""
        if options.get("debug") is not None:
            data["debug"] = "on" if options["debug"] else ""
        unset = set(options.get("unset_env") or [])
        env = _lines_to_dict(data.get("environment", ""))
        secret_lines = [line for line in data.get("secret_environment", "").splitlines()
                        if line.split("=", 1)[0] not in unset]
        env = {k: v for k, v in env.items() if k not in unset}
        for item in options.get("env") or []:
            name, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--env {item!r} has no '=': write --env NAME=VALUE.")
            env[name.strip()] = value
        data["environment"] = format_assignments(env)
        if options.get("secret_env_file"):
            new = self.read_secret_lines(options["secret_env_file"])
            names = {line.split("=", 1)[0].strip() for line in new if "=" in line}
            secret_lines = [line for line in secret_lines if line.split("=", 1)[0] not in names] + new
        data["secret_environment"] = "\n".join(secret_lines)
        static = _lines_to_dict(data.get("static_files", ""))
        for sub in options.get("unset_static") or []:
            static.pop("/" + sub.strip("/"), None)
        for item in options.get("static") or []:
            sub, sep, folder = item.partition("=")
            if not sep:
                raise CommandError(f"--static {item!r} has no '=': write --static /static=/srv/app/static.")
            static["/" + sub.strip().strip("/")] = folder
        data["static_files"] = format_assignments(static)
        return data

    def _save(self, form: WebAppForm, verb: str) -> WebApp:
        if not form.is_valid():
            lines = error_lines(form, options_of(self.parsers["create" if verb == "created" else "edit"],
                                                 **FILLED_BY))
            raise CommandError(f"The web application was not {verb}:\n  " + "\n  ".join(lines))
        webapp = services.save_definition(form, self.actor, actor=self.actor.get_username())
        self.report_warnings(form)
        return webapp

    def do_create(self, options: dict[str, Any]) -> None:
        services.require_admin(self.actor, "create", WebApp)
        data = self._form_data(options, {"name": options["path"]})
        webapp = self._save(WebAppForm(data, fix_keys=FIX_KEYS), "created")
        self.stdout.write(f"Created web application {webapp.name} ({webapp.module}:{webapp.callable}, "
                          f"{webapp.get_protocol_display()} under {webapp.engine_name}).")

    def do_edit(self, options: dict[str, Any]) -> None:
        webapp = self.get(options["path"])
        services.require_admin(self.actor, "edit", WebApp)
        data = self._form_data(options, WebAppForm(instance=webapp).as_data())
        form = WebAppForm(data, instance=webapp, fix_keys=FIX_KEYS)
        if not form.is_valid():
            self._save(form, "saved")  # says what is wrong (exit code 1)
        save_and_report(self, form, options, f"Saved web application {webapp.name}.")

    def do_nginx_config(self, options: dict[str, Any]) -> None:
        nginx_command.handle(options, self.stdout, self.stderr)



def _lines_to_dict(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value
    return values


def _absolute_paths(options: dict[str, Any]) -> None:
    """Paths on a command line are relative to where it runs (the form wants full paths);
    an interpreter given by name (python3) is looked up on PATH, as a shell would."""
    import os
    import shutil

    for name in ("directory", "requirements_file", "log_file"):
        if options.get(name):
            options[name] = os.path.abspath(options[name])
    python = options.get("python_executable")
    if python and "/" not in python:
        options["python_executable"] = shutil.which(python) or python
    elif python:
        options["python_executable"] = os.path.abspath(python)
    statics = []
    for item in options.get("static") or []:
        sub, sep, folder = item.partition("=")
        statics.append(f"{sub}={os.path.abspath(folder)}" if sep and folder else item)
    options["static"] = statics
