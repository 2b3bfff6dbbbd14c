"""Program definitions: any command line, supervised like supervisor's ``[program:x]``."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from portal.process.spec import STOP_SIGNALS
from processes.models import Definition, seconds_field

# Fields that go into the keeper's spec (the command, its folder and environment, how it is
# probed and stopped): changing them while it runs would leave the running process different
# from its definition, so they may change only while it is stopped (or with a restart).
RUNTIME_FIELDS = (
    "command",
    "directory",
    "environment",
    "secret_environment",
    "stop_signal",
    "probe",
    "probe_target",
    "log_file",
    "init_timeout",
    "stop_timeout",
    "restart_policy",
    "run_as",
    "allow_root",
)


class Program(Definition):
    class Probe(models.TextChoices):
        NONE = "", "None: running once it has stayed up for the start timeout"
        TCP = "tcp", "TCP: a connection to host:port"
        HTTP = "http", "HTTP: a GET of a URL answering below 500"
        UNIX = "unix", "Unix socket: a connection to a socket's path"

    STOP_SIGNAL_CHOICES = [(s, f"SIG{s}") for s in STOP_SIGNALS]

    name = models.CharField(
        max_length=64,
        unique=True,
        help_text="Letters, digits and _ - . (e.g. queue-worker). Unique regardless of case; cannot be changed "
                  "once saved.",
    )
    command = models.CharField(
        max_length=2000,
        help_text="The command line, written as shell words (e.g. /usr/bin/python3 -m http.server 8000), never run "
                  "through a shell: no pipes, redirections or $VARIABLES. The first word is a full path, or a name "
                  "found on PATH, which is saved as its full path.",
    )
    directory = models.CharField(
        "working directory",
        max_length=500,
        blank=True,
        help_text="Full path of the folder it starts in. Blank: its own home folder, which only it may write.",
    )
    environment = models.JSONField("environment variables", default=dict, blank=True)
    # {"NAME": "value"}: given to the program only; never shown, logged or recorded again.
    secret_environment = models.JSONField("secret environment variables", default=dict, blank=True)
    stop_signal = models.CharField(
        max_length=4,
        choices=STOP_SIGNAL_CHOICES,
        default="TERM",
        help_text="What a stop sends first, to the program and every process it started; SIGKILL follows after "
                  "the stop timeout.",
    )
    probe = models.CharField(
        "readiness probe",
        max_length=4,
        choices=Probe.choices,
        default="",
        blank=True,
        help_text="How the portal knows the program is ready (state running).",
    )
    probe_target = models.CharField(
        "probe target",
        max_length=500,
        blank=True,
        help_text="TCP: host:port (e.g. 127.0.0.1:8000). HTTP: a URL (e.g. http://127.0.0.1:8000/health). Unix "
                  "socket: its full path.",
    )
    # supervisor's startsecs: 1 s is what its users expect of a program without a probe.
    init_timeout = seconds_field(
        "start timeout", 1, 1,
        "Without a probe: seconds it must stay up to count as started (supervisor's startsecs), default 1. "
        "With a probe: seconds the probe has to answer; give a server the time it needs, e.g. 30. 1 to 300.",
    )

    # The runtime fields (state, pid, intent, request_seq, run_key...) are ManagedProcess's.

    AUDITED_FIELDS = ("name", *RUNTIME_FIELDS)
    SECRET_FIELDS = ("secret_environment",)
    SUMMARY_FIELDS = ("command",)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="program_name_unique_regardless_of_case"),
        ]

    def get_absolute_url(self) -> str:
        return reverse("programs:detail", args=[self.url_arg])
