"""``manage.py webapp nginx-config [--server-name NAME] [--listen PORT] [--trusted-proxy ADDRESS] [--edge]``:
the subcommand, kept apart so that the ``webapp`` command only adds it to its subcommands (``add_parser``) and calls
``handle`` for it."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, TextIO

from django.core.management.base import CommandError
from django.db import DatabaseError

from webapps.front.routes import RoutesError

HELP = "Print the nginx config (maps, upstreams and a server block) for an operator's own nginx."


def add_parser(subparsers: Any) -> ArgumentParser:
    parser = subparsers.add_parser(
        "nginx-config",
        help=HELP,
        description=HELP + " Include it inside nginx's http { } block, e.g. as "
        "/etc/nginx/conf.d/portal-apps.conf, and print it again (then nginx -s reload) when a "
        "definition or a state changes: see docs/operations.md.",
    )
    parser.add_argument("--server-name", default="_", help="the host name the applications answer to, "
                        "e.g. apps.example.com (default: any)")
    parser.add_argument("--listen", default=None, help="the port (or HOST:PORT) nginx listens on for them "
                        "(default: PORTAL_APPS_PORT)")
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                        help="an address or network of your own proxy in front of this nginx, whose "
                        "X-Forwarded-For is believed (repeatable); every other client's is replaced by its address")
    parser.add_argument("--edge", action="store_true",
                        help="print instead the edge's configuration: one address in front of the fronts of "
                        "every host, each application's path sent to the hosts it runs on, a request that "
                        "fails on one host retried on the next (idempotent methods only); --listen defaults to 80")
    parser.add_argument("--complete", metavar="PREFIX", default=None,
                        help="with --edge: a whole nginx.conf (pid file, error log and temp folders under "
                        "PREFIX) rather than what goes inside your http { }")
    return parser


def handle(options: dict[str, Any], stdout: TextIO, stderr: TextIO | None = None) -> None:
    from webapps.routing import edge_config, nginx_config

    if options.get("edge"):
        try:
            prefix = options.get("complete")
            text, notes = edge_config(options.get("server_name") or "_", options.get("listen") or 80,
                                      include=prefix is None, prefix=prefix or ".")
        except RoutesError as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:
            raise CommandError(f"the definitions cannot be read ({exc}): run manage.py migrate first") from exc
        stdout.write(text)
        for note in notes:
            (stderr or stdout).write(f"note: {note}\n")
        return
    try:
        proxies = [p for value in options.get("trusted_proxy") or [] for p in value.split(",")]
        stdout.write(nginx_config(options.get("server_name") or "_", options.get("listen"), proxies))
    except RoutesError as exc:
        raise CommandError(str(exc)) from exc
    except DatabaseError as exc:
        raise CommandError(f"the definitions cannot be read ({exc}): run manage.py migrate first") from exc
