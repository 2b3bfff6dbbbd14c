"""Web application definitions: a Python WSGI or ASGI application served at a URL path.

The front (webapps/front/) routes by these fields: ``name`` (the mount path),
``protocol``, ``static_files`` and the state; ``webapps.routing.current_routes``
turns the rows into its routes file.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.functional import cached_property

from portal.process import states
from portal.process.states import RUNNING
from processes.hosts import down_failure
from processes.models import STATE_CHOICES, Definition, Host, seconds_field

__all__ = ["STATE_CHOICES", "WebApp"]

# Fields that go into the command line, the environment or the keeper's spec: changing
# them while the application runs would leave the running process different from its
# definition, so they may change only while it is stopped. The static mappings are the
# front's, which follows a change within a second: they may change at any time.
RUNTIME_FIELDS = (
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
    "log_file",
    "restart_policy",
    "init_timeout",
    "stop_timeout",
    # Who it runs as (processes.accounts): changed only while it is stopped.
    "run_as",
    "allow_root",
)
MAX_WORKERS = 32
MAX_THREADS = 64
# What a gunicorn user sets for a small site, not gunicorn's bare 1 x 1: two workers, so that a
# reload (debug) or a crashed worker never leaves the application without one that answers (a
# reload replaces them one after the other), and two threads each for WSGI, so that one slow
# request does not hold up the next. Not gunicorn's (2 x cores) + 1 either: the portal hosts many
# applications on one machine (20 on 2 cores in docs/benchmarks.md, (4)), and each worker costs
# its memory whether the application is busy or not. An ASGI worker is one event loop: 1 thread.
DEFAULT_WORKERS = 2
DEFAULT_THREADS = {"wsgi": 2, "asgi": 1}
# The file a folder's requirements are found in when a definition names neither an interpreter
# nor a requirements file (WebApp.found_requirements), as a PaaS looks for it.
FOLDER_REQUIREMENTS = "requirements.txt"


def default_python() -> str:
    """The portal's own interpreter."""
    return sys.executable


def folder_requirements(directory: str, python_executable: str, requirements_file: str) -> str:
    """The application directory's requirements.txt when a definition names neither an interpreter
    nor a requirements file and the folder has one, else "": the form, the merge preview, the pages
    and each start ask this one rule (WebApp.found_requirements)."""
    if python_executable or requirements_file or not directory:
        return ""
    path = os.path.join(directory, FOLDER_REQUIREMENTS)
    return path if os.path.isfile(path) else ""


def host_names(text: str) -> list[str]:
    """The hosts a definition's Hosts field names, in its order, each once (any case)."""
    names: list[str] = []
    for word in re.split(r"[\s,]+", text or ""):
        if word and word.lower() not in {n.lower() for n in names}:
            names.append(word)
    return names


def host_of(app: WebApp) -> str:
    """The host whose worker runs this row's process group."""
    return app.host or settings.PORTAL_HOST_NAME


def same_host(a: str, b: str) -> bool:
    return (a or settings.PORTAL_HOST_NAME).lower() == (b or settings.PORTAL_HOST_NAME).lower()


def groups_summary(groups: list[WebApp]) -> dict[str, Any]:
    """How many of its hosts run it: "running on 2 of 3 hosts", and each group with its host's health."""
    shown = []
    for group in groups:
        host = host_of(group)
        down = down_failure(host) is not None
        # Down (it reported, then fell silent) or without a worker (none ever reported from it).
        never = down and Host.last_seen(host) is None
        shown.append({"group": group, "host": host, "down": down, "why": "no worker" if never else "host down",
                      "state": states.UNKNOWN if down and group.is_active else group.shown_state})
    running = sum(1 for g in shown if g["state"] == RUNNING)
    return {"groups": shown, "running": running, "total": len(shown)}


class DefinitionManager(models.Manager["WebApp"]):
    """The definitions, without the rows of their further hosts (``WebApp.groups`` has every row).
    Used for related objects too (Django's base manager is its own, plain one)."""

    def get_queryset(self) -> models.QuerySet[WebApp]:
        return super().get_queryset().filter(primary__isnull=True)


class WebApp(Definition):
    """A web application; its runtime fields (state, pid, intent, run_key...) are the process layer's."""

    class Protocol(models.TextChoices):
        WSGI = "wsgi", "WSGI"
        ASGI = "asgi", "ASGI"

    class Engine(models.TextChoices):
        GUNICORN = "gunicorn", "gunicorn (WSGI)"
        UVICORN = "uvicorn", "uvicorn (ASGI)"
        GRANIAN = "granian", "granian (WSGI or ASGI)"

    # Which engine serves which protocol: gunicorn is WSGI only, uvicorn ASGI only.
    ENGINE_PROTOCOLS = {
        Engine.GUNICORN: {Protocol.WSGI},
        Engine.UVICORN: {Protocol.ASGI},
        Engine.GRANIAN: {Protocol.WSGI, Protocol.ASGI},
    }
    DEFAULT_ENGINE = {Protocol.WSGI: Engine.GUNICORN, Protocol.ASGI: Engine.UVICORN}

    name = models.CharField(
        "path",
        max_length=200,
        help_text=(
            "The URL path the application is served at, e.g. /flask: letters, digits and . _ ~ - in "
            "/-separated segments. Unique regardless of case; cannot be changed once saved."
        ),
    )
    directory = models.CharField(
        "application directory",
        max_length=500,
        help_text="Full path of the folder that holds the application's code; it is the working directory.",
    )
    module = models.CharField(
        "application module",
        max_length=200,
        help_text="The module that holds the application, without .py; a dotted module such as mysite.wsgi works.",
    )
    callable = models.CharField(
        "callable name",
        max_length=200,
        default="app",
        help_text="The application object in that module, e.g. app (Flask, FastAPI) or application (Django).",
    )
    protocol = models.CharField(
        "protocol type", max_length=4, choices=Protocol.choices, default=Protocol.WSGI
    )
    debug = models.BooleanField(
        default=False, help_text="Reload the application when one of its .py files or templates changes."
    )
    python_executable = models.CharField(
        "Python executable path",
        max_length=500,
        blank=True,
        help_text="The interpreter that runs the application. Blank: the portal's own (wherever the portal runs), "
                  "unless a requirements file is given or the application directory has a requirements.txt.",
    )
    requirements_file = models.CharField(
        max_length=500,
        blank=True,
        help_text="Instead of an interpreter: a requirements.txt from which the portal builds the "
                  "application's own virtualenv, as its user, in its own folder (and rebuilds it when the file "
                  "changes). Blank, with no interpreter either: the application directory's requirements.txt, "
                  "when it has one.",
    )
    engine = models.CharField(
        max_length=10,
        choices=Engine.choices,
        blank=True,
        help_text="The server that runs the application. Blank: gunicorn for WSGI, uvicorn for ASGI.",
    )
    # DEFAULT_WORKERS x DEFAULT_THREADS (see there); the form fills in the threads by protocol.
    workers = models.PositiveSmallIntegerField(
        default=DEFAULT_WORKERS,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WORKERS)],
        help_text=f"Worker processes, 1 to {MAX_WORKERS}. Default {DEFAULT_WORKERS}: with two or more, a reload "
                  "or a crashed worker loses no request; each costs the application's memory once more.",
    )
    threads = models.PositiveSmallIntegerField(
        default=DEFAULT_THREADS["wsgi"],
        validators=[MinValueValidator(1), MaxValueValidator(MAX_THREADS)],
        help_text=f"Threads per worker for a WSGI application, 1 to {MAX_THREADS}. Blank: "
                  f"{DEFAULT_THREADS['wsgi']} for WSGI, {DEFAULT_THREADS['asgi']} for ASGI (one event loop per "
                  "worker).",
    )
    # {"NAME": "value"}: shown on pages and in the history.
    environment = models.JSONField("environment variables", default=dict, blank=True)
    # {"NAME": "value"}: given to the application only; never shown, logged or recorded again.
    secret_environment = models.JSONField("secret environment variables", default=dict, blank=True)
    # {"/static": "/abs/dir"}: sub-paths of the application the front serves from a directory.
    static_files = models.JSONField(default=dict, blank=True)
    init_timeout = seconds_field("start timeout", 30, 2,
                                 "Seconds the application has to answer its first HTTP request, 2 to 300.")
    stop_timeout = seconds_field("stop timeout", 10, 1,
                                 "Seconds between asking the application to stop and killing it, 1 to 300.")
    # Kept from a CPF merge file (NameSpace=, MatchRoles=) and shown as written: the portal
    # has no namespaces and no IRIS roles, so neither changes what it does.
    namespace = models.CharField(
        "namespace (IRIS)", max_length=64, blank=True,
        help_text="Kept for IRIS configuration files (NameSpace); the portal has no namespaces and does not use it.",
    )
    match_roles = models.CharField(
        "match roles (IRIS)", max_length=500, blank=True,
        help_text="Kept for IRIS configuration files (MatchRoles, e.g. :%ALL); the portal's roles are its own "
                  "and this changes no access.",
    )

    hosts = models.CharField(
        max_length=1000, blank=True,
        help_text="The hosts it runs on, separated by commas, e.g. web1, web2: each runs a process group of "
                  "its own, and the edge nginx spreads the requests over them. Blank: this portal's host.",
    )
    # The host of this row's process group; blank: the portal's own (PORTAL_HOST_NAME). The definition's
    # row runs on one of its hosts, and each further host has a row of its own whose ``primary`` is the
    # definition (webapps/hosts.py): the same fields, its own state, pid, runs and activity.
    host = models.CharField(max_length=253, blank=True, editable=False)
    primary = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                editable=False)

    objects = DefinitionManager()
    groups = models.Manager()
    MANY_HOSTS = True

    # Fields whose values go into the history; secret variables are recorded only as "changed".
    AUDITED_FIELDS = ("name", *RUNTIME_FIELDS, "static_files", "namespace", "match_roles", "hosts")
    SECRET_FIELDS = ("secret_environment",)
    # What a creation's one-line summary names (portal/models.py AuditEntry.summary).
    SUMMARY_FIELDS = ("directory",)

    class Meta:
        ordering = [Lower("name")]
        verbose_name = "web application"
        default_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(Lower("name"), condition=Q(primary__isnull=True),
                                    name="webapp_path_unique_regardless_of_case"),
            models.UniqueConstraint(Lower("name"), Lower("host"), name="webapp_one_group_per_host"),
        ]

    @cached_property
    def host_groups(self) -> dict[str, Any]:
        """Its process group on each of its hosts, with each host's health (webapps/hosts.py)."""
        return groups_summary(list(self.process_groups()))

    @property
    def hosts_line(self) -> str:
        """"running on 2 of 3 hosts", and the hosts that are down."""
        summary = self.host_groups
        line = f"running on {summary['running']} of {summary['total']} hosts"
        for why in ("host down", "no worker"):
            named = [g["host"] for g in summary["groups"] if g["down"] and g["why"] == why]
            if named:
                line += f"; {'down' if why == 'host down' else 'no worker'}: {', '.join(named)}"
        return line

    def process_groups(self) -> models.QuerySet[WebApp]:
        """Its process groups: this row and the rows of its further hosts (all of them on a replica's too)."""
        root = self.primary_id or self.pk
        return type(self).groups.filter(Q(pk=root) | Q(primary_id=root)).order_by("pk")

    @property
    def found_requirements(self) -> str:
        """The application directory's requirements.txt, when the definition names neither an
        interpreter nor a requirements file and the folder has one: its virtualenv is built from
        it, as a PaaS does. Looked up at each start (and on each page), so a file added later is
        used from the next start on, and one removed leaves the portal's own interpreter."""
        return folder_requirements(self.directory, self.python_executable, self.requirements_file)

    @property
    def requirements(self) -> str:
        """The file its virtualenv is built from: the one named, or the folder's; empty: none."""
        return self.requirements_file or self.found_requirements

    @property
    def slug(self) -> str:
        """The path without its leading slash, as it appears in the portal's own URLs."""
        return self.name.lstrip("/")

    url_arg = slug

    @classmethod
    def lookup(cls, name: str) -> dict[str, Any]:
        """The application at /name, whatever the case and the slashes around it."""
        return {"name__iexact": "/" + name.strip("/")}

    def get_absolute_url(self) -> str:
        return reverse("webapps:detail", args=[self.slug])

    @property
    def apps_url(self) -> str:
        """Where the application answers: the front, on the apps port of the portal's host."""
        return f"{self.name}/"

    @property
    def engine_name(self) -> str:
        return self.engine or self.DEFAULT_ENGINE[self.Protocol(self.protocol)]
