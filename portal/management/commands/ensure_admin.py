"""Create the first administrator, ``admin``, when the portal has no user yet."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from portal.paths import VAR_DIR
from portal.roles import ADMINISTRATOR

PASSWORD_FILE = VAR_DIR / "admin-password.txt"


class Command(BaseCommand):
    help = (
        "Create the administrator 'admin' when there is no user. The password comes from "
        "PORTAL_ADMIN_PASSWORD, or is generated, printed once and saved in "
        "var/admin-password.txt (readable by its owner only)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.exists():
            return
        password = os.environ.get("PORTAL_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser("admin", email="", password=password)
        user.groups.add(Group.objects.get(name=ADMINISTRATOR))
        if generated:
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            fd = os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created the administrator 'admin' with the password: {password}\n"
                    f"(It is also saved, readable only by you, in {PASSWORD_FILE}. "
                    "Change it after logging in.)"
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS("Created the administrator 'admin' with PORTAL_ADMIN_PASSWORD.")
            )
