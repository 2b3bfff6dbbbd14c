"""Gateway (External Python Server) definitions."""

from __future__ import annotations

import sys

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from portal.process import states
from processes.models import Definition, seconds_field

# The state field's choices (the names and the sets of states are in portal/process/states.py).
STATE_CHOICES = states.CHOICES
# Fields that go into the command line or the keeper's spec: changing them
# while the server runs would leave the running process different from its
# definition, so they may change only while it is stopped.
RUNTIME_FIELDS = (
    "server",
    "port",
    "use_passphrase",
    "passphrase_verifier",
    "log_file",
    "python_executable",
    "python_options",
    "connection_timeout",
    "init_timeout",
    "restart_policy",
    "stop_timeout",
    # Whether the process may run without a passphrase at all (any local user can then use it),
    # and whether it may also listen beyond loopback without one.
    "allow_no_passphrase",
    "allow_unauthenticated_network",
    # Who it runs as (processes.accounts): changed only while it is stopped.
    "run_as",
    "allow_root",
)


def default_python() -> str:
    """The portal's own interpreter. Kept for migration 0001, which names it; a definition now
    stores an empty path for it (ManagedProcess.interpreter resolves it at each start)."""
    return sys.executable


class Gateway(Definition):
    class Type(models.TextChoices):
        PYTHON = "python", "Python"

    timeout_validators = [MinValueValidator(2), MaxValueValidator(300)]

    type = models.CharField(max_length=10, choices=Type.choices, default=Type.PYTHON)
    name = models.CharField(
        max_length=64,
        unique=True,
        help_text="Letters, digits and _ - . %. Unique regardless of case; cannot be changed once saved.",
    )
    server = models.CharField(
        "server name / IP address",
        max_length=253,
        default="127.0.0.1",
        help_text="Where the server listens. 0.0.0.0 listens on every address of the host.",
    )
    port = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="TCP port, 1 to 65535, not used by another definition on the same server.",
    )
    use_passphrase = models.BooleanField(
        default=False, help_text="Clients must prove they know the passphrase to connect."
    )
    # False by default: a definition without a passphrase needs this ticked (the form, and so the
    # CLI, the admin and merge files, refuse it otherwise; the start checks it again).
    allow_no_passphrase = models.BooleanField(
        "allow any local user to run code through it (no passphrase)",
        default=False,
        help_text=(
            "Without a passphrase every user of this host (and, beyond loopback, anyone who can reach the "
            "port) can connect and run code as the user the gateway runs as. Needed when “Use passphrase” "
            "is off."
        ),
    )
    allow_unauthenticated_network = models.BooleanField(
        "allow connections from the network without a passphrase",
        default=False,
        help_text=(
            "Only for a trusted network: without a passphrase, anyone who can reach the port can run code "
            "as its user. Refused unless ticked by an Administrator."
        ),
    )
    # A PBKDF2 verifier ("pbkdf2_sha256$iterations$salt$key"), never the passphrase:
    # the server checks an HMAC challenge with the derived key, so the plain
    # passphrase is not needed after the form is saved. See docs/architecture.md.
    passphrase_verifier = models.CharField(max_length=255, blank=True, editable=False)
    python_executable = models.CharField(
        "Python executable path",
        max_length=500,
        blank=True,
        default="",
        help_text="Python 3.9 or newer, with msgpack. Blank: the portal's own interpreter, wherever the portal "
                  "runs (an export then names none, so it works on another host).",
    )
    python_options = models.CharField(
        max_length=500,
        blank=True,
        help_text=(
            "Extra interpreter options, written as shell words (e.g. -X dev -W error). Never run through a shell."
        ),
    )
    connection_timeout = models.PositiveSmallIntegerField(
        default=5,
        validators=timeout_validators,
        help_text=(
            "Seconds the portal waits for the server to accept a connection and answer a ping (each readiness "
            "check at start), 2 to 300."
        ),
    )
    init_timeout = seconds_field("initialization timeout", 5, 2,
                                 "Seconds the server has to answer its first ping, 2 to 300.")
    stop_timeout = seconds_field("stop timeout", 5, 1,
                                 "Seconds between asking the server to stop and killing it, 1 to 300.")

    # The runtime fields (state, pid, intent, request_seq, run_key...) are ManagedProcess's.

    # Fields whose values go into the history; the verifier is recorded only as "changed".
    AUDITED_FIELDS = ("type", "name", *RUNTIME_FIELDS)
    SECRET_FIELDS = ("passphrase_verifier",)
    # What a creation's one-line summary names (portal/models.py AuditEntry.summary), and the
    # history's label of a field whose verbose name is not its form's.
    SUMMARY_FIELDS = ("server", "port")
    AUDIT_LABELS = {"passphrase_verifier": "Passphrase"}

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="gateway_name_unique_regardless_of_case"),
        ]
        permissions = [("operate_gateway", "Can start, stop and restart gateways")]

    def get_absolute_url(self) -> str:
        return reverse("gateways:detail", args=[self.name])

    @property
    def without_passphrase(self) -> bool:
        """Any local user can connect and run code through it (only when its definition allows it)."""
        return not self.use_passphrase

    @property
    def open_to_network(self) -> bool:
        """Listens beyond loopback without a passphrase (only when an administrator allowed it)."""
        from portal.process.checks import is_loopback

        return not self.use_passphrase and not is_loopback(self.server)
