"""``manage.py gateway``: gateway definitions from scripts.

    gateway create NAME --port P [--server H] [--python PATH] [--options "..."]
                   [--log-file F] [--passphrase-file F | --allow-no-passphrase]
                   [--allow-unauthenticated-network]
    gateway edit NAME [--port P] [--server H] [--python PATH] [--options "..."] [--log-file F]
                 [--passphrase-file F | --no-passphrase] [--[no-]allow-no-passphrase]
                 [--[no-]allow-unauthenticated-network] [--init-timeout S] [--connection-timeout S]
                 [--stop-timeout S] [--restart-policy P] [--run-as USER] [--[no-]allow-root] [--restart]
    gateway list [--json]
    gateway show NAME [--json]
    gateway delete NAME
    gateway start|stop|restart NAME [--wait] [--timeout S]
    gateway status NAME [--json]

Creation goes through the same form as the page, so a bad port gives the same
message (and exit code 1). The passphrase is read from a file, never from the
command line, where `ps` would show it to every local user.

Who acts: ``--user NAME`` acts as that portal user, with that user's role. Without
it the command acts as the local operator ("cli:<os user>") with administrator
rights: whoever can run manage.py can already read the portal's database and
settings.

Start, stop and restart go through the same service as the pages and the API
(processes.control), so a Viewer given with --user is refused the same way.
Without --wait the command returns once the request is sent; with it, it waits
until the state settles and exits 1 when the server did not end where asked.
"""

from __future__ import annotations

from argparse import ArgumentParser, BooleanOptionalAction
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from gateways.forms import GatewayForm
from gateways.models import Gateway
from portal import roles
from portal.process.checks import path_too_long
from processes import services
from processes.cli import DefinitionCommand, add_restart_option, save_and_report
from processes.editing import form_data_of
from processes.forms import error_lines, options_of

# What ``edit`` may change, by the form's field names (its options' dest).
EDIT_FIELDS = ("server", "port", "python_executable", "python_options", "log_file", "connection_timeout",
               "init_timeout", "stop_timeout", "restart_policy", "run_as")
# The fields ``create`` and ``edit`` fill from other options than their own (the rest: the option
# whose dest is the field, read from the parser by processes.forms.options_of).
FILLED_BY = {"passphrase": "--passphrase-file", "use_passphrase": "--passphrase-file"}


def gateway_as_dict(gateway: Gateway) -> dict[str, Any]:
    return {
        "name": gateway.name,
        "type": gateway.type,
        "server": gateway.server,
        "port": gateway.port,
        "use_passphrase": gateway.use_passphrase,
        "allow_no_passphrase": gateway.allow_no_passphrase,
        "allow_unauthenticated_network": gateway.allow_unauthenticated_network,
        "log_file": gateway.log_file,
        "python_executable": gateway.python_executable,
        "interpreter": gateway.interpreter,  # the one that runs it: the portal's own when the above is empty
        "python_options": gateway.python_options,
        "connection_timeout": gateway.connection_timeout,
        "init_timeout": gateway.init_timeout,
        "restart_policy": gateway.restart_policy,
        "stop_timeout": gateway.stop_timeout,
        "run_as": gateway.run_as,
        "allow_root": gateway.allow_root,
        "state": gateway.shown_state,
        "created_at": gateway.created_at.isoformat(),
        "changed_at": gateway.changed_at.isoformat(),
    }


def _edit_options(edit: ArgumentParser) -> None:
    """``edit``: every option of ``create``, none required, none with a default (what is not given is kept)."""
    edit.add_argument("name")
    edit.add_argument("--port", help="TCP port, 1 to 65535")
    edit.add_argument("--server", help="IP address or host name")
    edit.add_argument("--python", dest="python_executable", help="Python executable path")
    edit.add_argument("--options", dest="python_options", help="Python options, as shell words ('' for none)")
    edit.add_argument("--log-file")
    edit.add_argument("--passphrase-file",
                      help="a new passphrase: the first line of this file ('-' reads standard input)")
    edit.add_argument("--no-passphrase", action="store_true",
                      help="remove the passphrase (with --allow-no-passphrase: any local user can then run code)")
    edit.add_argument("--allow-no-passphrase", action=BooleanOptionalAction, default=None,
                      help="acknowledge that without a passphrase any local user can run code through it")
    edit.add_argument("--allow-unauthenticated-network", action=BooleanOptionalAction, default=None,
                      help="let a server beyond loopback run without a passphrase")
    edit.add_argument("--init-timeout")
    edit.add_argument("--connection-timeout")
    edit.add_argument("--stop-timeout")
    edit.add_argument("--restart-policy", choices=[c.value for c in Gateway.RestartPolicy])
    edit.add_argument("--run-as", metavar="USER", help="the user it runs as ('' for a user of its own)")
    edit.add_argument("--allow-root", action=BooleanOptionalAction, default=None, help="let --run-as be root")
    add_restart_option(edit, "gateway")


class Command(DefinitionCommand):
    help = "Create, edit, list, show and delete gateway definitions; start, stop and restart gateways."
    kind = "gateway"
    list_columns = (("NAME", lambda g: g.name), ("TYPE", lambda g: g.get_type_display()),
                    ("SERVER", lambda g: g.server), ("PORT", lambda g: g.port), ("STATE", lambda g: g.shown_state))
    empty = "No gateways are defined. Create one with `manage.py gateway create NAME --port P`."

    def as_dict(self, obj: Gateway) -> dict[str, Any]:
        return gateway_as_dict(obj)

    def add_definition_parsers(self, sub: Any) -> None:
        create = sub.add_parser("create", help="create a definition")
        self.parsers["create"] = create
        create.add_argument("name")
        create.add_argument("--port", required=True, help="TCP port, 1 to 65535")
        create.add_argument("--server", default="127.0.0.1", help="IP address or host name")
        create.add_argument("--python", dest="python_executable", default="", help="Python executable path")
        create.add_argument("--options", dest="python_options", default="", help="Python options, as shell words")
        create.add_argument("--log-file", default="")
        create.add_argument(
            "--passphrase-file", help="file whose first line is the passphrase ('-' reads standard input)"
        )
        create.add_argument(
            "--allow-no-passphrase", action="store_true",
            help="create it without a passphrase: any local user can then run code as the user it runs as",
        )
        create.add_argument(
            "--allow-unauthenticated-network", action="store_true",
            help="let a server beyond loopback run without a passphrase (anyone who reaches the port runs code)",
        )
        create.add_argument("--init-timeout", default="5")
        create.add_argument(
            "--connection-timeout", default="5",
            help="seconds the portal waits for the server to accept a connection and answer a ping (2 to 300)",
        )
        create.add_argument("--stop-timeout", default="5")
        create.add_argument("--run-as", default="", metavar="USER",
                            help="the user it runs as when the portal runs as root (default: a user of its own)")
        create.add_argument("--allow-root", action="store_true", help="let --run-as be root")
        create.add_argument(
            "--restart-policy", default=Gateway.RestartPolicy.ON_FAILURE,
            choices=[c.value for c in Gateway.RestartPolicy],
        )
        self.parsers["edit"] = sub.add_parser("edit", help="change a definition (the options given; the rest is kept)")
        _edit_options(self.parsers["edit"])

    def _read_passphrase(self, path: str) -> str:
        too_long = path_too_long(path)
        if too_long:
            raise CommandError(f"--passphrase-file: {too_long}.")
        try:
            if path == "-":
                import sys

                text = sys.stdin.readline()
            else:
                text = Path(path).read_text()
        except OSError as e:
            raise CommandError(f"Cannot read the passphrase file {path}: {e.strerror}.") from None
        passphrase = text.splitlines()[0] if text else ""
        if not passphrase:
            raise CommandError(f"The passphrase file {path} is empty: put the passphrase on its first line.")
        return passphrase

    def do_create(self, options: dict[str, Any]) -> None:
        data = {
            "type": Gateway.Type.PYTHON,
            "name": options["name"],
            "server": options["server"],
            "port": options["port"],
            "python_executable": options["python_executable"],
            "python_options": options["python_options"],
            "log_file": options["log_file"],
            "connection_timeout": options["connection_timeout"],
            "init_timeout": options["init_timeout"],
            "stop_timeout": options["stop_timeout"],
            "restart_policy": options["restart_policy"],
            "run_as": options["run_as"],
        }
        if options.get("allow_root"):
            data["allow_root"] = "on"
        if options.get("allow_no_passphrase"):
            data["allow_no_passphrase"] = "on"
        if options.get("allow_unauthenticated_network"):
            data["allow_unauthenticated_network"] = "on"
        if options.get("passphrase_file"):
            data["use_passphrase"] = "on"
            data["passphrase"] = self._read_passphrase(options["passphrase_file"])
        form = GatewayForm(data)
        if not form.is_valid():
            lines = error_lines(form, options_of(self.parsers["create"], **FILLED_BY))
            raise CommandError("The gateway was not created:\n  " + "\n  ".join(lines))
        gateway = services.save_definition(form, self.actor, actor=self.actor.get_username())
        self.report_warnings(form)
        self.stdout.write(f"Created gateway {gateway.name} on {gateway.server}:{gateway.port}.")

    def do_edit(self, options: dict[str, Any]) -> None:
        gateway = self.get(options["name"])
        if not roles.can_administer(self.actor):
            raise PermissionDenied("Only an Administrator may edit gateway definitions; ask an administrator "
                                   "for that role.")
        if options.get("passphrase_file") and options.get("no_passphrase"):
            raise CommandError("Give --passphrase-file or --no-passphrase, not both.")
        data = form_data_of(GatewayForm, gateway)
        for option in EDIT_FIELDS:
            if options.get(option) is not None:
                data[option] = options[option]
        for flag in ("allow_no_passphrase", "allow_unauthenticated_network", "allow_root"):
            if options.get(flag) is not None:
                data[flag] = "on" if options[flag] else ""
        if options.get("no_passphrase"):
            data["use_passphrase"] = ""
        if options.get("passphrase_file"):
            data["use_passphrase"] = "on"
            data["passphrase"] = self._read_passphrase(options["passphrase_file"])
        form = GatewayForm(data, instance=gateway)
        if not form.is_valid():
            lines = error_lines(form, options_of(self.parsers["edit"], **FILLED_BY))
            raise CommandError("The gateway was not saved:\n  " + "\n  ".join(lines))
        save_and_report(self, form, options, f"Saved gateway {gateway.name}.")
