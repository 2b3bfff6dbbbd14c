"""Settings for the test suite: everything under a private temporary var/ folder.

The Celery worker and the gateway processes that the tests start run in other
processes, so the test database is one that they can open too: on SQLite a file
(not SQLite's in-memory database), on PostgreSQL (PORTAL_DATABASE_URL=postgres://…)
Django's usual test_<name> database on the same server.
"""

import os
import tempfile

# Under pytest-xdist each worker process is a suite of its own (its own var/, database, Redis and
# Celery workers): a var/ the suite made for another process (the controlling one) is replaced.
# The processes a worker starts (Celery workers, manage.py) inherit its var/ and keep it.
_owner = os.environ.get("PYTEST_XDIST_WORKER", "")
if not os.environ.get("PORTAL_VAR_DIR") or os.environ.get("PORTAL_TEST_VAR_OF", _owner) != _owner:
    os.environ["PORTAL_VAR_DIR"] = tempfile.mkdtemp(prefix=f"portal-test-{_owner + '-' if _owner else ''}")
    os.environ["PORTAL_TEST_VAR_OF"] = _owner
# The suite always uses its own embedded Redis: a developer's REDIS_URL may be
# served by a running portal's worker, which would take the tests' tasks.
os.environ.pop("REDIS_URL", None)

from portal.settings import *  # noqa: E402, F403 (after the var/ above is chosen)
from portal.settings import DATABASES, VAR_DIR  # noqa: E402

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
# A kind made for the tests of the shared layer (processes/tests/echo/): its model, adapter, form
# and URLs, and nothing else, as any kind has; processes/tests/test_echo_kind.py drives it.
INSTALLED_APPS = [*INSTALLED_APPS, "processes.tests.echo"]  # noqa: F405
ROOT_URLCONF = "processes.tests.echo.root_urls"
