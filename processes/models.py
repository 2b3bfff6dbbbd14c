"""What every managed process has, whatever its kind, and the audit of what processes did.

``ManagedProcess`` is abstract: each kind's definition (``gateways.Gateway``, later
``webapps.WebApp``) subclasses it and adds its own fields. ``Run`` and ``Activity``
are one table each for every kind: a row names its process by ``kind`` (the
adapter's kind, e.g. "gateway") and ``object_id``, and keeps its ``name`` for when
the definition is deleted (``object_id`` is then set to NULL, as the foreign key
of the gateways' tables did).
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from portal.process import states
from portal.process.states import RUNNING, START, STARTING, STOP, STOPPED, STOPPING
from processes.accounts import describe, names_root
from processes.kinds import adapter_for, adapter_of

STATE_CHOICES = states.CHOICES
NAME_LENGTH = 200


def is_portal_python(path: str) -> bool:
    """Is ``path`` the portal's own interpreter, as forms before empty meant it wrote it in full?
    Only the very file the portal runs, or another name for it in the same folder (a virtualenv's
    bin/python and bin/python3); not the base Python a virtualenv links to, which lacks the
    portal's packages. Used by the migrations that make such definitions empty."""
    import os

    if not path:
        return False
    if path == sys.executable:
        return True
    try:
        same_folder = os.path.dirname(os.path.abspath(path)) == os.path.dirname(os.path.abspath(sys.executable))
        return same_folder and os.path.samefile(path, sys.executable)
    except OSError:
        return False


def forget_portal_python(model: Any, unless: Any = None) -> int:
    """Empty ``python_executable`` where it names the portal's own interpreter (is_portal_python):
    empty means the same on this host, and the definition then moves to another. ``unless(row)``:
    rows to leave as they are (where empty would mean something else). Returns how many changed."""
    changed = 0
    for row in model.objects.exclude(python_executable="").iterator():
        if is_portal_python(row.python_executable) and not (unless and unless(row)):
            changed += model.objects.filter(pk=row.pk).update(python_executable="")
    return changed


class ManagedProcess(models.Model):
    """The runtime fields of a process that a keeper runs; never set from a hope.

    What the process is doing now, as the keeper on its host reports it (and the
    operating system confirms): see processes/sync.py.
    """

    state = models.CharField(max_length=10, choices=STATE_CHOICES, default=STOPPED, db_index=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    pid_create_time = models.FloatField(null=True, blank=True)
    run_host = models.CharField(max_length=253, blank=True, help_text="Host whose keeper runs it.")
    last_error = models.TextField(blank=True)
    # The last start: command (secrets masked), first output lines, time to ready.
    startup = models.JSONField(default=dict, blank=True)
    # Recorded intent: what a person or the API last asked for, and when.
    intent = models.CharField(max_length=10, blank=True)
    intent_at = models.DateTimeField(null=True, blank=True)
    # The last request wins: every request takes the next number (a conditional
    # UPDATE), its task carries it, and a task whose number is no longer the row's
    # does nothing. ``requested`` is the last action asked for; unlike ``intent`` it
    # stays once the request has been acted on, so a waiting caller knows the goal.
    request_seq = models.PositiveBigIntegerField(default=0, editable=False)
    requested = models.CharField(max_length=10, blank=True, editable=False)
    # Events of the keeper's journal already copied into Activity.
    last_seq = models.IntegerField(default=0)
    # Names the keeper's run directory: stable, and free of the characters a name may have.
    run_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Who its processes run as when the portal may switch users (portal/process/accounts.py):
    # empty for a user of its own (a dynamic uid, see HostedUser), or an existing user's name.
    run_as = models.CharField(
        "run as", max_length=32, blank=True,
        help_text="Leave empty for a user of its own, made by the portal (recommended); or an existing user.",
    )
    allow_root = models.BooleanField(
        "allow running as root", default=False,
        help_text="Only when Run as names root: its code may then do anything on this host.",
    )

    # ``objects``: the definitions, as the pages, the CLI, the API and merges list them.
    # ``groups``: every process group, the rows the process layer starts, stops and watches. The
    # same rows for a kind that runs on one host; a web application that runs on several hosts has
    # one row of its own per further host (webapps/hosts.py), which ``objects`` leaves out.
    objects = models.Manager()
    groups = models.Manager()
    MANY_HOSTS = False  # True: one definition may run on several hosts (process_groups)

    class Meta:
        abstract = True

    def process_groups(self) -> models.QuerySet[Any]:
        """The rows of its process groups: this one alone, unless the kind runs one definition on
        several hosts (a web application: webapps.models.WebApp.process_groups)."""
        return type(self).groups.filter(pk=self.pk)

    @property
    def runs_as(self) -> str:
        """Who its processes run as on this host, in words (processes/accounts.py)."""
        return describe(adapter_of(self).kind, self)

    @property
    def uses_portal_python(self) -> bool:
        """Its definition names no interpreter: it runs with the portal's own, wherever that is."""
        return not getattr(self, "python_executable", "")

    @property
    def interpreter(self) -> str:
        """The Python that runs it: the one its definition names, or (empty) the portal's own.
        Empty is kept empty, not filled in with today's path, so that an export or a merge file
        moves between portals and hosts whose interpreters live elsewhere."""
        return getattr(self, "python_executable", "") or sys.executable

    @property
    def runs_as_root(self) -> bool:
        return bool(self.allow_root and names_root(self.run_as))

    @property
    def is_active(self) -> bool:
        return self.state in states.ACTIVE

    @property
    def in_transition(self) -> bool:
        """A start or stop is in flight: the row keeps polling until it settles. Not while its host
        is down: nothing there acts on the request until the host is back (shown_state: unknown)."""
        if (self.intent or self.state not in states.SETTLED) and self.host_down:
            return False
        if self.intent == START:
            return self.state not in states.START_SETTLED or self._intent_unseen()
        if self.intent == STOP:
            return self.state not in states.DOWN or self._intent_unseen()
        return self.state not in states.SETTLED

    @property
    def shown_state(self) -> str:
        """The state as pages, the API and the dashboard show it: the keeper's report, except
        that a start or stop still on its way reads as starting or stopping (never as stopped
        or running), and that nothing is said to run, start or stop on a host that is down.
        processes.state.SHOWN_STATE is the same rule in SQL, for counting (without the hosts)."""
        if (self.state in states.ACTIVE or self.intent or self.state not in states.SETTLED) and self.host_down:
            return states.UNKNOWN  # what the database last heard; nobody on its host can say now
        if self.in_transition and self.intent == START and self.state not in (STARTING, RUNNING):
            return STARTING
        if self.in_transition and self.intent == STOP and self.state not in (STOPPING, STOPPED):
            return STOPPING
        return self.state

    @property
    def host_down(self) -> bool:
        """Its host's worker fell silent (processes/hosts.py): nothing there is watched now."""
        return bool(self.run_host) and Host.is_down(self.run_host)

    def _intent_unseen(self) -> bool:
        # An intent newer than the last state change has not been acted on yet.
        return bool(self.intent_at and (not self.state_changed_at or self.intent_at > self.state_changed_at))


class RestartPolicy(models.TextChoices):
    """Whether reconcile starts a process again that died unseen (processes/sync.py)."""

    NEVER = "never", "Never"
    ON_FAILURE = "on-failure", "On unexpected exit"
    ALWAYS = "always", "Always"


def seconds_field(verbose_name: str, default: int, low: int, help_text: str) -> models.PositiveSmallIntegerField:
    """A definition's timeout: whole seconds, ``low`` to 300."""
    return models.PositiveSmallIntegerField(
        verbose_name, default=default, help_text=help_text,
        validators=[MinValueValidator(low), MaxValueValidator(300)],
    )


class Definition(ManagedProcess):
    """What an operator defines for every kind, beside the runtime fields: how it is supervised
    (restart policy, timeouts), where it logs, and who created and last changed it.

    A kind's model subclasses it with its own fields, and may declare a field here again where its
    default or words differ (a gateway's initialization timeout is 5 s). The history and the
    services read the class attributes below; the shared pages find a definition by
    ``lookup(name)`` and name it in their URLs by ``url_arg``.
    """

    RestartPolicy = RestartPolicy

    restart_policy = models.CharField(max_length=12, choices=RestartPolicy.choices, default=RestartPolicy.ON_FAILURE)
    init_timeout = seconds_field("start timeout", 30, 2, "Seconds it has to become ready, 2 to 300.")
    stop_timeout = seconds_field("stop timeout", 10, 1, "Seconds between asking it to stop and killing it, 1 to 300.")
    log_file = models.CharField(
        max_length=500,
        blank=True,
        help_text="Full path of a new file in var/log/ (or a folder set in PORTAL_LOG_ROOTS). Blank: a file "
                  "named after it in its kind's folder of var/log/.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Fields whose values go into the history (portal/audit.py); those in SECRET_FIELDS are
    # recorded only as "changed". SUMMARY_FIELDS: what a creation's one-line summary names.
    AUDITED_FIELDS: tuple[str, ...] = ()
    SECRET_FIELDS: tuple[str, ...] = ()
    SUMMARY_FIELDS: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    @property
    def url_arg(self) -> str:
        """What names it in the portal's URLs (a web application's path without its first slash)."""
        return self.name

    @classmethod
    def lookup(cls, name: str) -> dict[str, Any]:
        """The filter that finds the definition a URL or a command line names (``url_arg``): names
        are unique regardless of case, so any case finds it, as the CLI and the API always did."""
        return {"name__iexact": name}


class OfProcessQuerySet(models.QuerySet):
    def of(self, obj: Any) -> OfProcessQuerySet:
        """The rows of one process (a Gateway, a WebApp...); none for a row not (or no longer) saved."""
        if obj.pk is None:
            return self.none()
        kind = adapter_of(obj).kind
        if not obj.MANY_HOSTS:
            return self.filter(kind=kind, object_id=obj.pk)
        # A definition of several hosts: the rows of every one of its process groups.
        return self.filter(kind=kind, object_id__in=obj.process_groups().values("pk"))


class Run(models.Model):
    """One start of a managed process: the audit of past runs."""

    class Outcome(models.TextChoices):
        STARTING = "starting", "Starting"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"
        EXITED = "exited", "Exited"
        FAILED = "failed", "Failed to start"
        LOST = "lost", "Lost"

    kind = models.CharField(max_length=32)
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    name = models.CharField(max_length=NAME_LENGTH, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=160, help_text="Who or what asked for this start.")
    host = models.CharField(max_length=253)
    pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(db_index=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.STARTING)
    exit_code = models.IntegerField(null=True, blank=True)
    signal = models.CharField(max_length=20, blank=True)
    command = models.TextField(blank=True)
    message = models.TextField(blank=True)

    objects = OfProcessQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["kind", "object_id", "-started_at"], name="run_of_process_started")]

    def __str__(self) -> str:
        return f"{self.name} pid {self.pid} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration(self) -> float | None:
        if self.stopped_at is None:
            return None
        return (self.stopped_at - self.started_at).total_seconds()

    @property
    def exit_text(self) -> str:
        if self.signal:
            return self.signal
        return "" if self.exit_code is None else f"exit {self.exit_code}"


class Activity(models.Model):
    """One state transition or request, written once and never changed."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    kind = models.CharField(max_length=32)
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    name = models.CharField(max_length=NAME_LENGTH)
    at = models.DateTimeField(db_index=True)
    from_state = models.CharField(max_length=10, blank=True)
    to_state = models.CharField(max_length=10, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    # Where the process listened, when it listens on a TCP port (a gateway); else empty.
    port = models.PositiveIntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    signal = models.CharField(max_length=20, blank=True)
    expected = models.BooleanField(null=True, blank=True)
    # The user's name, "auto-restart", "reconcile", "keeper", or "api:<user>" / "cli:<user>".
    trigger = models.CharField(max_length=160)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    host = models.CharField(max_length=253, blank=True)
    message = models.TextField(blank=True)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The keeper journal's sequence number: copying the journal twice adds nothing.
    seq = models.IntegerField(null=True, blank=True)

    objects = OfProcessQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "activity"
        indexes = [
            models.Index(fields=["kind", "object_id", "-at", "-id"], name="activity_of_process_at_id"),
            models.Index(fields=["-at", "-id"], name="activity_at_id"),
            # The user/trigger filter of the Activity pages.
            models.Index(fields=["trigger", "-at", "-id"], name="process_activity_trigger"),
            # A deleted definition's rows, found by the name they keep.
            models.Index(fields=["kind", "name", "-at"], name="activity_of_name_at"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_id", "host", "seq"], name="process_activity_once_per_journal_line"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.name} {self.from_state}->{self.to_state}"

    @property
    def activity_url(self) -> str | None:
        """The Activity page of the process this row is about, while it exists."""
        if self.object_id is None:
            return None
        try:
            return adapter_for(self.kind).activity_url(self.name)
        except LookupError:
            return None

    def as_row(self) -> dict[str, Any]:
        """One CSV line: ``kind`` says what the process is ("gateway", "web application"), ``name`` which."""
        try:
            kind = adapter_for(self.kind).label
        except LookupError:  # a kind no longer installed: its stored name
            kind = self.kind
        return {
            "time": self.at.isoformat(),
            "kind": kind,
            "name": self.name,
            "from": self.from_state,
            "to": self.to_state,
            "pid": self.pid,
            "port": self.port,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "expected": self.expected,
            "trigger": self.trigger,
            "level": self.level,
            "host": self.host,
            "message": self.message,
        }


class Host(models.Model):
    """A host of the installation, as its worker last reported it (processes/hosts.py).

    Every host's worker writes its row every few seconds: its name (PORTAL_HOST_NAME, its queue's),
    the address others reach it at (PORTAL_HOST_ADDRESS) and where its web applications' front
    listens. A host whose row is older than ``Host.down_after()`` seconds has no worker answering:
    the pages say it is down, and show none of its processes as running.
    """

    name = models.CharField(max_length=253, unique=True)
    address = models.CharField(max_length=253, blank=True)
    front = models.CharField("applications' front", max_length=300, blank=True)
    seen_at = models.DateTimeField()
    first_seen_at = models.DateTimeField(auto_now_add=True)

    # A host is down when its worker missed this many reports (PORTAL_HOST_BEAT_SECONDS apart): a busy
    # database or a slow pass is no death.
    MISSED = 4
    # Seconds a page's copy of the reports is kept: a list of many rows asks once.
    SEEN_CACHE = 1.0

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def down_after(cls) -> float:
        """Seconds without a report after which a host is down."""
        return cls.MISSED * settings.PORTAL_HOST_BEAT_SECONDS

    @classmethod
    def last_seen(cls, name: str) -> dt.datetime | None:
        """When ``name``'s worker last reported (None: never), from a copy at most SEEN_CACHE s old."""
        with _seen_lock:
            if time.monotonic() - _seen["read"] > cls.SEEN_CACHE:
                _seen["hosts"] = {n.lower(): at for n, at in cls.objects.values_list("name", "seen_at")}
                _seen["read"] = time.monotonic()
            return _seen["hosts"].get(name.lower())

    @classmethod
    def is_down(cls, name: str) -> bool:
        """A host that has reported and then fell silent for down_after() seconds. A host never heard
        of is not called down here (its worker may not have started yet): requests say so instead."""
        if not name or name.lower() == settings.PORTAL_HOST_NAME.lower():
            return False
        seen = cls.last_seen(name)
        return seen is not None and seen < timezone.now() - dt.timedelta(seconds=cls.down_after())


_seen: dict[str, Any] = {"read": 0.0, "hosts": {}}
_seen_lock = threading.Lock()


class HostedUser(models.Model):
    """The dynamic user of one definition: a uid from PORTAL_HOSTED_UIDS, given for good.

    Kept when the definition is deleted, so that a uid is never given to another definition
    (files the first one left, in /tmp say, would be the second one's).
    """

    kind = models.CharField(max_length=32)
    object_id = models.PositiveBigIntegerField()
    uid = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="hosted_user_per_process")]

    def __str__(self) -> str:
        return f"uid {self.uid} ({self.kind} {self.object_id})"
