"""The private portal every benchmark runs against: its own var/ folder, settings and secret key.

Called before Django or portal.paths is imported (they read the environment once). The
developer's Redis, database and debug settings are left out, so a benchmark never touches them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def private_portal(prefix: str) -> Path:
    """Point this process at a new var/ folder (returned) and at the project's settings."""
    sys.path.insert(0, str(ROOT))
    var = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        {
            "PORTAL_VAR_DIR": str(var),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PORTAL_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "PORTAL_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        }
    )
    for name in ("REDIS_URL", "PORTAL_DATABASE_URL", "PORTAL_DEBUG"):
        os.environ.pop(name, None)
    return var
