"""WSGI entry point: module ``mysite.wsgi``, callable ``application``.

The mount (``/django``) comes from ``SCRIPT_NAME`` in the server's environment; Django takes the
per-request prefix from the WSGI environ, so ``reverse`` and the admin build links under it.
The database is migrated here, once, before the first request: "created on first use".
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_wsgi_application()

from mysite.database import migrate_once  # noqa: E402  (needs the settings loaded above)

migrate_once()
