"""Settings for the test suite: everything under a private temporary var/ folder.

The Celery worker and the gateway processes that the tests start run in other
processes, so the test database is one that they can open too: on SQLite a file
(not SQLite's in-memory database), on PostgreSQL (PORTAL_DATABASE_URL=postgres://…)
Django's usual test_<name> database on the same server.
"""

import os
import tempfile

os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="portal-test-"))
# The suite always uses its own embedded Redis: a developer's REDIS_URL may be
# served by a running portal's worker, which would take the tests' tasks.
os.environ.pop("REDIS_URL", None)

from portal.settings import *  # noqa: F403
from portal.settings import DATABASES, VAR_DIR

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    # Django's own default, spelled out so that conftest.worker_env can name it before set-up.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# Serve static files from the source folders: the suite does not run collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
