"""Recording the history of definitions, shared by gateways and web applications."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

from portal.models import AuditEntry


def actor_name(user: Any) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return "system"
    return user.get_username()


def account_of(user: Any) -> Any:
    """The user's account row, or None for the system or the local CLI operator."""
    return user if isinstance(user, models.Model) and user.is_authenticated else None


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The values of ``fields`` in a JSON-friendly form."""
    values = {}
    for name in fields:
        value = getattr(obj, name)
        if value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
            value = str(value)
        values[name] = value
    return values


def record(**kwargs: Any) -> AuditEntry | None:
    """Write one history row (see :func:`entry`). A change that changes nothing writes nothing."""
    row = entry(**kwargs)
    if row is not None:
        row.save()
    return row


def entry(
    *,
    user: Any,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    secret_fields: Iterable[str] = (),
    actor: str | None = None,
) -> AuditEntry | None:
    """One history row, not yet saved (a merge writes many with bulk_create); None for a
    change that changes nothing.

    Secret fields never get their values recorded, only that they changed.
    """
    before = before or {}
    after = after or {}
    secret = set(secret_fields)
    changes: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name in secret:
            if not new and action == AuditEntry.Action.CREATED:
                continue  # nothing secret was set: a creation leaves the field out
            # Whether a value is set, never the value; "set": False is a secret removed.
            changes[name] = {"secret": True} if new else {"secret": True, "set": False}
        else:
            changes[name] = {"before": old, "after": new}
    if action == AuditEntry.Action.CHANGED and not changes:
        return None
    return AuditEntry(
        actor=account_of(user),
        actor_name=actor or actor_name(user),
        action=action,
        object_type=obj._meta.model_name,
        object_id=obj.pk,
        object_name=str(obj),
        changes=changes,
    )


def history_of(obj: models.Model) -> models.QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(object_type=obj._meta.model_name, object_id=obj.pk)



def authorship(obj: Any) -> dict[str, Any]:
    """Who created a definition and who last changed it, for its page, from its history.

    A definition created or changed from the CLI or a merge has no account in ``created_by`` or
    ``changed_by``, yet its history names the operator ("cli:root"): the history is the truth.
    ``changed_at`` is None while nothing changed the definition since its creation, so a page does
    not show the creation a second time as a change "by system". A definition with no history (made
    before the portal kept one) falls back on its own fields."""
    created = history_of(obj).filter(action=AuditEntry.Action.CREATED).order_by("at", "id").first()
    changed = history_of(obj).filter(action=AuditEntry.Action.CHANGED).first()
    if changed is not None:
        changed_at, changed_by = changed.at, changed.actor_name
    elif created is not None:
        changed_at, changed_by = None, None
    else:
        changed_at, changed_by = obj.changed_at, actor_name(obj.changed_by)
    return {
        "created_by_name": created.actor_name if created else actor_name(obj.created_by),
        "changed_at": changed_at,
        "changed_by_name": changed_by,
    }
