"""What happens to gateway definitions, shared by the views, the CLI and the API.

Each function checks the actor's permission itself, so no entry point can
forget it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from gateways.forms import GatewayForm
from gateways.models import Gateway
from portal import audit, roles
from portal.process.states import STARTING
from processes import control


def _require_admin(user: Any, verb: str) -> None:
    if not roles.can_administer(user):
        raise PermissionDenied(
            f"Only an Administrator may {verb} gateway definitions; ask an administrator "
            "for that role."
        )


def save_definition(form: GatewayForm, user: Any, actor: str | None = None) -> Gateway:
    """Create or change a definition from a valid form and record the history."""
    creating = form.instance.pk is None
    _require_admin(user, "create" if creating else "edit")
    current = None if creating else Gateway.objects.get(pk=form.instance.pk)
    before = None if current is None else audit.snapshot(current, Gateway.AUDITED_FIELDS)
    with transaction.atomic():
        gateway = form.save(commit=False)
        if current is not None:
            after = audit.snapshot(gateway, Gateway.AUDITED_FIELDS)
            changed = [f for f in Gateway.AUDITED_FIELDS if before and before[f] != after[f]]
            control.check_definition_change(current, changed)
        account = audit.account_of(user)
        if creating:
            gateway.created_by = account
        gateway.changed_by = account
        gateway.save()
        audit.record(
            user=user,
            actor=actor,
            action="created" if creating else "changed",
            obj=gateway,
            before=before,
            after=audit.snapshot(gateway, Gateway.AUDITED_FIELDS),
            secret_fields=Gateway.SECRET_FIELDS,
        )
    return gateway


def delete_blocker(gateway: Gateway) -> str:
    """Why the definition cannot be deleted now ("" when it can): the confirmation says it before a click."""
    if gateway.is_active or gateway.intent == "start":
        # Deleting the definition of a live server would orphan its listener.
        state = STARTING if gateway.intent == "start" and not gateway.is_active else gateway.state
        return f"{gateway.name} is {state}: stop {gateway.name} first, then delete it."
    return ""


def delete_definition(gateway: Gateway, user: Any, actor: str | None = None) -> None:
    _require_admin(user, "delete")
    gateway.refresh_from_db()
    if blocker := delete_blocker(gateway):
        raise control.ControlError(blocker)
    with transaction.atomic():
        before = audit.snapshot(gateway, Gateway.AUDITED_FIELDS)
        audit.record(
            user=user,
            actor=actor,
            action="deleted",
            obj=gateway,
            before=before,
            after=None,
            secret_fields=Gateway.SECRET_FIELDS,
        )
        gateway.delete()
