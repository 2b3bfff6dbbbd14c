"""``manage.py webapp``: web applications from scripts.

    webapp nginx-config [--server-name NAME] [--listen PORT]
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from webapps import nginx_command


class Command(BaseCommand):
    help = "Web applications: nginx-config prints the config for an operator's own nginx."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        nginx_command.add_parser(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "nginx-config":
            nginx_command.handle(options, self.stdout)
