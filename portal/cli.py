"""Who acts when a management command runs without ``--user``."""

from __future__ import annotations

import getpass
from typing import Any


class CliOperator:
    """The local operator running manage.py: an administrator without an account.

    Whoever can run manage.py can already read the portal's database and settings.
    """

    is_authenticated = True
    is_active = True
    pk = None

    def __init__(self) -> None:
        self.name = f"cli:{getpass.getuser()}"

    def get_username(self) -> str:
        return self.name

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return True

    def has_perms(self, perms: Any, obj: Any = None) -> bool:
        return True


def actor_named(username: str | None) -> Any:
    """Who acts for ``--user NAME``: that active portal user; without it, the local operator."""
    from django.contrib.auth import get_user_model
    from django.core.management.base import CommandError

    if not username:
        return CliOperator()
    try:
        return get_user_model().objects.get(username=username, is_active=True)
    except get_user_model().DoesNotExist:
        raise CommandError(
            f"There is no active portal user named {username!r}: check the name, or leave "
            "out --user to act as the local operator."
        ) from None
