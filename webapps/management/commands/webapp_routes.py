"""``manage.py webapp_routes``: write the front's routes file from the applications' definitions.

The launcher runs it before it starts the front, so that the front begins with the definitions
and states the database holds; afterwards every change rewrites the file by itself
(webapps/routing.py). Harmless to run at any time: it writes only when the content changed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapps import routing
from webapps.front.routes import RoutesError


class Command(BaseCommand):
    help = "Write the front's routes file (var/front/routes.json) from the web applications' definitions."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            written = routing.sync_routes()
        except (OSError, RoutesError) as exc:
            raise CommandError(f"the routes file {routing.routes_file()} could not be written: {exc}") from exc
        if options["verbosity"] > 1 or written:
            self.stdout.write(f"{'wrote' if written else 'unchanged:'} {routing.routes_file()}")
