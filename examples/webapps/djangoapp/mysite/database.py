"""Create and migrate the SQLite database on first start."""

from __future__ import annotations

import fcntl
from pathlib import Path

from django.conf import settings
from django.core.management import call_command


def migrate_once() -> None:
    """Apply migrations; a file lock keeps several server workers from migrating at the same time."""
    db_path = Path(settings.DATABASES["default"]["NAME"])
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(db_path.with_name(db_path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        call_command("migrate", interactive=False, verbosity=0)
