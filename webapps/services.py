"""What happens to web application definitions, shared by the pages, the CLI and the API.

Each function checks the actor's permission itself, so no entry point can forget it.
The roles are the gateways' (portal/roles.py): a Viewer sees, an Operator starts and
stops, an Administrator defines.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from portal import audit, roles
from processes import control
from webapps import adapter
from webapps.forms import WebAppForm
from webapps.models import WebApp


def require_admin(user: Any, verb: str) -> None:
    if not roles.can_administer(user):
        raise PermissionDenied(
            f"Only an Administrator may {verb} web application definitions; ask an administrator for that role."
        )


def save_definition(form: WebAppForm, user: Any, actor: str | None = None, *,
                    current: WebApp | None = None, restarting: bool = False) -> WebApp:
    """Create or change a definition from a valid form and record the history (secrets as "changed").

    ``current``: the definition as stored, when the caller has just read it (a merge, under its lock);
    ``restarting``: a restart follows (processes.editing), so a running application's runtime fields may change."""
    creating = form.instance.pk is None
    require_admin(user, "create" if creating else "edit")
    if creating:
        current = None
    elif current is None:
        current = WebApp.objects.get(pk=form.instance.pk)
    before = None if current is None else audit.snapshot(current, WebApp.AUDITED_FIELDS)
    with transaction.atomic():
        webapp = form.save(commit=False)
        if current is not None and not restarting:
            after = audit.snapshot(webapp, WebApp.AUDITED_FIELDS)
            changed = [f for f in WebApp.AUDITED_FIELDS if before and before[f] != after[f]]
            control.check_definition_change(current, changed)
        account = audit.account_of(user)
        if creating:
            webapp.created_by = account
        webapp.changed_by = account
        webapp.save()
        audit.record(
            user=user,
            actor=actor,
            action="created" if creating else "changed",
            obj=webapp,
            before=before,
            after=audit.snapshot(webapp, WebApp.AUDITED_FIELDS),
            secret_fields=WebApp.SECRET_FIELDS,
        )
    return webapp


# Why the definition cannot be deleted now ("" when it can): the same for every kind.
delete_blocker = control.delete_blocker


def delete_definition(webapp: WebApp, user: Any, actor: str | None = None) -> None:
    require_admin(user, "delete")
    webapp.refresh_from_db()
    if blocker := delete_blocker(webapp):
        raise control.ControlError(blocker)
    with transaction.atomic():
        audit.record(
            user=user,
            actor=actor,
            action="deleted",
            obj=webapp,
            before=audit.snapshot(webapp, WebApp.AUDITED_FIELDS),
            after=None,
            secret_fields=WebApp.SECRET_FIELDS,
        )
        adapter.WebAppAdapter().forget_hosted_folder(webapp)
        webapp.delete()
