"""What the portal itself keeps: the history of definitions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """Who created, changed or deleted which definition, with before and after values.

    Rows are written once and never changed: the admin shows them read-only.
    The object's name is copied so that the history of a deleted definition
    still reads well.
    """

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        CHANGED = "changed", "Changed"
        DELETED = "deleted", "Deleted"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=10, choices=Action.choices)
    object_type = models.CharField(max_length=40)
    object_id = models.BigIntegerField()
    object_name = models.CharField(max_length=200)
    # {"field": {"before": old, "after": new}}; a secret is {"changed": true}
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id", "-at"])]
        verbose_name = "definition change"
        verbose_name_plural = "history of definitions"

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.object_type} {self.object_name}"

    @property
    def object_label(self) -> str:
        """What the pages call the kind of object ("web application", not the model's "webapp")."""
        return OBJECT_LABELS.get(self.object_type, self.object_type)

    def change_lines(self) -> list[tuple[str, Any, Any, bool]]:
        """(field, before, after, is_secret) for display."""
        lines = []
        for field, change in sorted(self.changes.items()):
            if change.get("secret"):
                lines.append((field, None, None, True))
            else:
                lines.append((field, change.get("before"), change.get("after"), False))
        return lines


OBJECT_LABELS = {"webapp": "web application"}


class ApiToken(models.Model):
    """A per-user token for the JSON API (``Authorization: Bearer ...``).

    Only a SHA-256 digest is kept: the token is shown once, when it is created.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80, help_text="What the token is for, e.g. deploy script.")
    prefix = models.CharField(max_length=12, help_text="The first characters, to recognise it.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
