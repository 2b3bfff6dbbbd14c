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
