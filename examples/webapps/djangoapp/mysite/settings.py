"""Settings of the Django example, read from the environment.

APP_DB_PATH                  the SQLite file (default: djangoapp.sqlite3 beside manage.py, or in
                             HOME when that folder is not writable)
DJANGO_SECRET_KEY            the secret key; when unset one is generated once and kept in
                             ``<database file>.secret`` (mode 0600)
DJANGO_DEBUG                 1 for Django's debug pages (never in production)
DJANGO_ALLOWED_HOSTS         comma-separated host names the app answers (default: localhost names)
DJANGO_CSRF_TRUSTED_ORIGINS  comma-separated origins, e.g. https://apps.example.com:8001, needed
                             when the browser's origin differs from the Host the app sees
DJANGO_TRUST_FORWARDED_PROTO 1 when the app is reachable only through a front that sets
                             X-Forwarded-Proto (the portal's front does): HTTPS is then seen as such
SCRIPT_NAME                  the mount, set by the server's environment (gunicorn strips it from
                             the path); cookies are scoped to it so that two apps on one host do
                             not overwrite each other's session
DJANGO_STATIC_ROOT           where `manage.py collectstatic` puts the static files (optional)
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# Beside manage.py; where that folder is not the application's to write (the portal runs it as a
# user of its own, and the folder is root's), in its home.
DB_PATH = Path(os.environ.get("APP_DB_PATH")
               or (BASE_DIR if os.access(BASE_DIR, os.W_OK) else Path.home()) / "djangoapp.sqlite3").resolve()


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY")
    if key:
        return key
    # Every worker process must share the key, so a generated one is kept beside the database.
    path = DB_PATH.with_name(DB_PATH.name + ".secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        key = secrets.token_urlsafe(50)
        f.write(key)
    return key


SECRET_KEY = secret_key()
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
if os.environ.get("DJANGO_TRUST_FORWARDED_PROTO") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Django's default cookie names (sessionid, csrftoken), limited to this app's mount.
MOUNT = os.environ.get("SCRIPT_NAME", "").rstrip("/")
SESSION_COOKIE_PATH = MOUNT + "/"
CSRF_COOKIE_PATH = MOUNT + "/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "blog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB_PATH}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Under the mount: /django/static/... A relative "static/" is not enough: Django prefixes it with
# the script prefix of the moment STATIC_URL is first read and keeps that, and WhiteNoise reads it
# at start-up, before any request has set the prefix.
STATIC_URL = MOUNT + "/static/"
# WhiteNoise matches the path below the mount (PATH_INFO) and serves the admin's files straight
# from the installed apps: no collectstatic step. DJANGO_STATIC_ROOT is for `manage.py
# collectstatic` when a front serves the files instead.
WHITENOISE_STATIC_PREFIX = "/static/"
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
