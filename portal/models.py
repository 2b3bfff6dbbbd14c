"""What the portal itself keeps: the history of definitions."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models.fields import NOT_PROVIDED


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

    def model(self) -> type[models.Model] | None:
        """The model of the definition (looked up by name: the portal does not import its apps)."""
        return model_named(self.object_type)

    def change_lines(self) -> list[tuple[str, Any, Any, str]]:
        """(label, before, after, secret) for display, fields by their form labels.

        ``secret`` is "" for a plain field, else what the page may say of it: "set", "not set",
        "changed" or "removed" (never its value). A creation leaves out the values that are
        empty or the field's default, except the fields that define it (``SUMMARY_FIELDS``).
        """
        model = self.model()
        keep = set(getattr(model, "SUMMARY_FIELDS", ()))
        lines = []
        for field, change in sorted(self.changes.items(), key=lambda item: field_order(model, item[0])):
            label = field_label(model, field)
            if change.get("secret"):
                is_set = change.get("set", True)  # rows written before "set" existed said only "secret"
                if self.action == self.Action.CREATED:
                    lines.append((label, None, None, "set" if is_set else "not set"))
                else:
                    lines.append((label, None, None, "changed" if is_set else "removed"))
                continue
            before, after = change.get("before"), change.get("after")
            if self.action == self.Action.CREATED and field not in keep and is_default(model, field, after):
                continue
            lines.append((label, shown(before), shown(after), ""))
        return lines

    def summary(self) -> str:
        """One short line for the dashboard: the defining fields of a creation, the labels of a change."""
        model = self.model()
        if self.action == self.Action.CREATED:
            keep = getattr(model, "SUMMARY_FIELDS", ())
            values = [str(self.changes[f]["after"]) for f in keep if self.changes.get(f, {}).get("after")]
            return ", ".join(values)
        if self.action == self.Action.CHANGED:
            return ", ".join(label for label, *_ in self.change_lines())
        return ""


@cache
def model_named(model_name: str) -> type[models.Model] | None:
    for model in apps.get_models():
        if model._meta.model_name == model_name:
            return model
    return None


def field_label(model: type[models.Model] | None, name: str) -> str:
    """The field's label as its form shows it: the verbose name, capitalised."""
    labels = getattr(model, "AUDIT_LABELS", {})
    if name in labels:
        return labels[name]
    try:
        verbose = str(model._meta.get_field(name).verbose_name) if model else name
    except Exception:  # a field removed since the row was written: its stored name
        verbose = name
    return verbose[:1].upper() + verbose[1:]


def field_order(model: type[models.Model] | None, name: str) -> tuple[int, str]:
    """Fields in the order of the definition's form (its audited fields), unknown ones last."""
    order = list(getattr(model, "AUDITED_FIELDS", ()))
    return (order.index(name) if name in order else len(order), name)


def shown(value: Any) -> Any:
    """An empty value as None, which the page shows as "—" (an empty string would show as nothing)."""
    return None if value in ("", {}, []) else value


def is_default(model: type[models.Model] | None, name: str, value: Any) -> bool:
    if value in (None, "", {}, []):
        return True
    try:
        field = model._meta.get_field(name) if model else None
    except Exception:
        return False
    if field is None or field.default is NOT_PROVIDED:
        return False
    return value == field.get_default()


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
