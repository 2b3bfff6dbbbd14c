"""API tokens: how they are made, stored and checked.

A token is ``gwp_`` followed by 32 random bytes in URL-safe base64. Only its
SHA-256 digest is stored, so a copy of the database gives no working token;
a plain hash is enough (no salt, no slow derivation) because the token has
256 bits of entropy and cannot be guessed from a dictionary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.db.models import Q
from django.utils import timezone

from portal.models import ApiToken

PREFIX = "gwp_"
# Characters kept in clear to recognise a token in a list: "gwp_" and four more.
SHOWN_CHARS = 8
# Writing last_used_at on every request would make each API call a database write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class TokenRefused(Exception):
    """A token was sent but does not authenticate; the message says why and what to do."""


def generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(user: Any, name: str) -> tuple[ApiToken, str]:
    """Store a new token for ``user``; returns the row and the token, which is never stored."""
    token = generate()
    row = ApiToken.objects.create(user=user, name=name, prefix=token[:SHOWN_CHARS], digest=digest(token))
    return row, token


def authenticate(token: str) -> Any:
    """The active user the token belongs to; TokenRefused when it does not authenticate."""
    row = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest(token.strip()), revoked_at__isnull=True)
        .first()
    )
    if row is None:
        raise TokenRefused(
            "That API token is not valid: it was revoked, or it was never created. "
            "Create a new one on your profile page."
        )
    if not row.user.is_active:
        raise TokenRefused(
            f"That API token belongs to {row.user.get_username()}, whose account is disabled: "
            "ask an administrator."
        )
    now = timezone.now()
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION), pk=row.pk
    ).update(last_used_at=now)
    return row.user


def revoke(user: Any, pk: int) -> ApiToken | None:
    """Revoke one of ``user``'s own active tokens; None when there is no such token."""
    row = ApiToken.objects.filter(pk=pk, user=user, revoked_at__isnull=True).first()
    if row is None:
        return None
    ApiToken.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    row.refresh_from_db()
    return row
