"""The portal's three roles and the checks views, commands and the API share.

Viewer reads everything; Operator also starts and stops; Administrator also
creates, edits and deletes definitions and uses the Django admin. A role is a
Django group holding model permissions (created by a data migration), so an
administrator can also grant single permissions in the admin when a role does
not fit. Superusers hold every permission.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

VIEWER = "Viewer"
OPERATOR = "Operator"
ADMINISTRATOR = "Administrator"
ROLES = (VIEWER, OPERATOR, ADMINISTRATOR)

# What each role may do, as "app_label.codename". Later roles include earlier ones.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: [
        "gateways.view_gateway",
        "portal.view_auditentry",
        "webapps.view_webapp",
        "programs.view_program",
    ],
    OPERATOR: [
        "gateways.operate_gateway",
    ],
    ADMINISTRATOR: [
        "gateways.add_gateway",
        "gateways.change_gateway",
        "gateways.delete_gateway",
        # The pages check the gateways' permissions for both kinds (one set of roles); the Django
        # admin checks each model's own.
        "webapps.add_webapp",
        "webapps.change_webapp",
        "webapps.delete_webapp",
        "programs.add_program",
        "programs.change_program",
        "programs.delete_program",
    ],
}


def permissions_for(role: str) -> list[str]:
    perms: list[str] = []
    for name in ROLES:
        perms += ROLE_PERMISSIONS[name]
        if name == role:
            return perms
    raise ValueError(f"unknown role {role!r}")


def can_view(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.has_perm("gateways.view_gateway"))


def can_operate(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.has_perm("gateways.operate_gateway"))


def can_administer(user: Any) -> bool:
    return bool(
        user
        and user.is_authenticated
        and user.has_perms(
            ["gateways.add_gateway", "gateways.change_gateway", "gateways.delete_gateway"]
        )
    )


def role_of(user: Any) -> str | None:
    if can_administer(user):
        return ADMINISTRATOR
    if can_operate(user):
        return OPERATOR
    if can_view(user):
        return VIEWER
    return None


def require(allowed: bool, what: str) -> None:
    """Raise 403 with a sentence that says which role is needed."""
    if not allowed:
        raise PermissionDenied(what)


def context_processor(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {
        "can_view": can_view(user),
        "can_operate": can_operate(user),
        "can_administer": can_administer(user),
        "user_role": role_of(user),
    }
