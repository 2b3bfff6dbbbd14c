"""Settings for the portal, read from the environment.

Every variable is documented once, here and in the README's Configuration table:

PORTAL_SECRET_KEY     Django's secret key. When unset, one is generated on first
                      use and kept in var/secret_key (mode 0600).
PORTAL_DEBUG          "1" for Django's debug pages. Off by default.
PORTAL_ALLOWED_HOSTS  Comma-separated host names the web server answers to.
                      Default: 127.0.0.1,localhost plus PORTAL_HOST.
PORTAL_DATABASE_URL   e.g. postgres://user:pass@db/portal. Default: SQLite in
                      var/portal.sqlite3.
REDIS_URL             Celery's broker and the portal's cache. Default: the
                      embedded redis-server's socket under var/redis/, with
                      the password kept in var/redis_password (mode 0600).
PORTAL_VAR_DIR        Where var/ is. Default: var/ at the project root.
PORTAL_HOST_NAME      The name this machine's worker serves in the per-host
                      queues. Default: the machine's host name.
PORTAL_HOST_ADDRESS   The address other hosts, the edge nginx and clients reach this
                      host at (e.g. 10.0.0.5): where its web applications' front
                      is found, and what a gateway's Server names to run here.
                      Default: PORTAL_HOST, else 127.0.0.1 (one host).
PORTAL_APPS_URL       Where users reach the web applications when an edge nginx is in
                      front of several hosts (e.g. https://apps.example.com): the
                      portal's Open links and addresses use it. Default: the front
                      of the portal's own host, on PORTAL_APPS_PORT.
PORTAL_HOST_BEAT_SECONDS
                      How often each host's worker reports that it is alive; a host
                      silent for four reports is shown as down. Default: 5.
PORTAL_TIME_ZONE      Time zone of the pages. Default: UTC.
PORTAL_LOG_ROOTS      Folders, besides var/log/, where gateway log files may
                      be (absolute paths separated by ":"). A log file
                      elsewhere is refused. Default: none.
PORTAL_GATEWAY_SERVER_OPTIONS
                      Options added to every gateway server the portal starts,
                      e.g. "--max-connections 200 --idle-timeout 600" (see
                      docs/gateway-protocol.md). Default: none, the server's own.
PORTAL_APPS_PORT      The port where the front serves the web applications, on
                      the portal's host. Default: 8001.
PORTAL_SANDBOX        "on" (default): every web application and gateway runs in a
                      Landlock sandbox when the kernel has one (else it starts
                      unsandboxed, and says so); "required": a start fails without
                      it; "off": no sandbox.
PORTAL_SANDBOX_WRITABLE
                      More folders the sandboxed processes may write (absolute
                      paths separated by ":"). Default: none.
PORTAL_HOSTED_USERS   "auto" (default): when the portal runs as root (and other users
                      can run its Python and read its code), every gateway and web
                      application runs as a user of its own, else as the portal's user
                      (and says so at each start); "required": a start fails instead;
                      "off": always the portal's user.
PORTAL_HOSTED_UIDS    When the portal runs as root, each gateway and web application
                      runs as a user of its own: a uid (and gid) from this range,
                      given to one definition for good, with no /etc/passwd entry
                      (uids that have one are skipped). Default: 40000-49999.
PORTAL_HOSTED_DIR     The folder of the hosted processes' own files (each one's
                      home: its socket, virtualenv, caches), outside var/.
                      Default: var-hosted/ beside var/.
PORTAL_PACKAGE_INDEX  The package index every build asks (an application's virtualenv,
                      a gateway's msgpack install): a URL such as
                      https://pypi.example.com/simple (it may carry a token), or
                      "none" for PORTAL_PACKAGE_FIND_LINKS alone. Given to pip in the
                      build's environment, never to an application. Default: pip's own.
PORTAL_PACKAGE_FIND_LINKS
                      Wheel folders (a wheelhouse) or pages of links pip also looks
                      in, separated by spaces. Default: none.
PORTAL_PORT           The port of the portal's pages (make run serves them there);
                      the front's 503 page of a stopped application links to its
                      page on that port. Default: 8000.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shlex

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal import paths
from portal.paths import BASE_DIR, LOG_DIR, VAR_DIR, ensure_dirs, redis_url, this_host

# Before anything is written under var/: files 0600, folders 0700 (see paths.py).
paths.private_umask()
ensure_dirs()  # the SQLite database, logs and sockets go there, whether or not a key is generated


def _env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _positive_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit() and 0 < int(text) <= 1_000_000):
        raise ImproperlyConfigured(f"{name}={text[:40]!r} is not a whole number from 1 to 1000000: "
                                   f"set it to one, e.g. {default}, or unset it for {default}.")
    return int(text)


def _secret_key() -> str:
    if key := os.environ.get("PORTAL_SECRET_KEY"):
        return key
    return paths.private_secret(VAR_DIR / "secret_key", secrets.token_urlsafe(50))


# The options of gateways.server an operator may set for every gateway; the portal sets the others.
GATEWAY_SERVER_OPTION_NAMES = ("--max-connections", "--max-handshakes", "--handshake-timeout", "--idle-timeout",
                               "--max-frame-bytes")


def _gateway_server_options(text: str) -> list[str]:
    """PORTAL_GATEWAY_SERVER_OPTIONS as argv words, checked here so that a typo stops the portal at
    once rather than every gateway at its start (the server checks the ranges itself)."""
    try:
        words = shlex.split(text)
        names, values = words[::2], words[1::2]
        numbers_ok = len(names) == len(values) and all(float(v) >= 0 for v in values)
    except ValueError:  # unbalanced quotes, or a value that is not a number
        words, names, numbers_ok = [], [], False
    if not numbers_ok or any(n not in GATEWAY_SERVER_OPTION_NAMES for n in names):
        raise ImproperlyConfigured(
            f"PORTAL_GATEWAY_SERVER_OPTIONS={text!r} is not understood: give pairs of an option and a number, "
            f"e.g. \"--max-connections 200 --idle-timeout 600\"; the options are "
            f"{', '.join(GATEWAY_SERVER_OPTION_NAMES)}"
        )
    return words


SECRET_KEY = _secret_key()
DEBUG = _env_flag("PORTAL_DEBUG")
PORTAL_HOST_NAME = this_host()
PORTAL_HOST_ADDRESS = (os.environ.get("PORTAL_HOST_ADDRESS") or os.environ.get("PORTAL_HOST") or "127.0.0.1").strip()

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("PORTAL_ALLOWED_HOSTS", "").split(",")
    if h.strip()
] or ["127.0.0.1", "localhost", "[::1]", os.environ.get("PORTAL_HOST", "127.0.0.1")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "portal",
    "processes",
    "gateways",
    "webapps",
    "programs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.ContentSecurityPolicy",
    "portal.middleware.RejectNulCharacters",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.LoginRequiredEverywhere",
    "portal.middleware.AdminIgnoresEmptyToField",
    # Last, as axes asks: it turns a lockout found during the login into portal.lockout's answer.
    "axes.middleware.AxesMiddleware",
]

# Only the portal's own files run or style a page: no inline script, style or event handler, no
# other origin, no framing (portal/tests/test_browser_csp.py loads every main page without a violation).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

ROOT_URLCONF = "portal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.roles.context_processor",
                "processes.context_processors.names",
            ],
        },
    },
]

WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("PORTAL_DATABASE_URL")
        or f"sqlite:///{VAR_DIR / 'portal.sqlite3'}",
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker writes; the busy timeout
    # makes a writer wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Failed logins (the login page, the admin's login, API tokens) are counted by django-axes in the
# database, by account and address and by address (REMOTE_ADDR: the portal's gunicorn is reached
# directly). Beyond the limits, logins from there are refused until the cool-off has passed since
# the last failure, with a page that says when (portal/lockout.py); a success resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _positive_int("PORTAL_LOGIN_FAILURE_LIMIT", 5)  # per account and address
PORTAL_LOGIN_ADDRESS_FAILURE_LIMIT = _positive_int("PORTAL_LOGIN_ADDRESS_FAILURE_LIMIT", 20)
AXES_COOLOFF_TIME = dt.timedelta(minutes=_positive_int("PORTAL_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "portal.lockout.Handler"
AXES_USERNAME_CALLABLE = "portal.lockout.username"
AXES_LOCKOUT_CALLABLE = "portal.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no banner at every start of every process

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("PORTAL_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True
# ISO dates in the admin too (portal/formats/en/formats.py), as on the pages.
FORMAT_MODULE_PATH = ["portal.formats"]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# Django chmods what its storages write to 0644 by default, whatever the umask: var/ stays private
# (collectstatic writes var/static/; the web process reads it, as the same user).
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# The portal's cookies have names of their own: a hosted Django app (served on the apps port,
# same host: cookies are not isolated by port) keeps Django's default sessionid/csrftoken for its
# own login, and the front removes exactly these two from every request it forwards to an app.
SESSION_COOKIE_NAME = "portal_sessionid"
CSRF_COOKIE_NAME = "portal_csrftoken"
# What the routes file's "strip_cookies" lists (webapps/front/routes.py).
PORTAL_COOKIE_NAMES = (SESSION_COOKIE_NAME, CSRF_COOKIE_NAME)
SESSION_COOKIE_HTTPONLY = True
# Django's debug pages hide the settings whose names look secret; these URLs hold passwords too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.middleware.SafeExceptionReporterFilter"
CSRF_COOKIE_HTTPONLY = False  # htmx reads nothing from it; the token goes in hx-headers

try:
    # The embedded Redis's URL holds its password, read from var/redis_password: no
    # environment variable carries it (see portal/paths.py).
    REDIS_URL = redis_url()
except RuntimeError as e:  # an unusable var/redis_password: the message says what to do
    raise ImproperlyConfigured(str(e)) from None
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = "portal"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Reconcile every few seconds: find gateways that died unseen and apply their policy.
CELERY_BEAT_SCHEDULE = {
    "reconcile-processes": {"task": "processes.tasks.reconcile_all", "schedule": 5.0, "options": {"expires": 5}},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "portal": {"level": "INFO"},
        "gateways": {"level": "INFO"},
        "webapps": {"level": "INFO"},
        "programs": {"level": "INFO"},
    },
}
PORTAL_LOG_DIR = LOG_DIR


def _log_roots() -> list[str]:
    from django.core.exceptions import ImproperlyConfigured

    for entry in (os.environ.get("PORTAL_LOG_ROOTS") or "").split(os.pathsep):
        if entry.strip() and not os.path.isabs(entry.strip()):
            raise ImproperlyConfigured(
                f"PORTAL_LOG_ROOTS names {entry.strip()!r}, which is not an absolute path: "
                "give each log folder's full path, separated by ':'."
            )
    return [str(root) for root in paths.log_roots()]


PORTAL_LOG_ROOTS = _log_roots()
GATEWAY_SERVER_OPTIONS = _gateway_server_options(os.environ.get("PORTAL_GATEWAY_SERVER_OPTIONS", ""))


def _positive_seconds(name: str, default: float) -> float:
    from django.core.exceptions import ImproperlyConfigured

    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.1 <= value <= 3600:
        raise ImproperlyConfigured(f"{name}={text!r} is not a number of seconds from 0.1 to 3600: leave it unset "
                                   f"for {default:g}.")
    return value


def _apps_url(text: str) -> str:
    """PORTAL_APPS_URL: an http(s) origin, without a path (the applications' paths follow it)."""
    from urllib.parse import urlsplit

    from django.core.exceptions import ImproperlyConfigured

    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/") or parts.query:
        raise ImproperlyConfigured(f"PORTAL_APPS_URL={text!r} is not an origin such as https://apps.example.com "
                                   "(http or https, a host, no path): leave it unset for the front of this host.")
    return f"{parts.scheme}://{parts.netloc}"


def _apps_port(text: str) -> int:
    from django.core.exceptions import ImproperlyConfigured

    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise ImproperlyConfigured(
            f"PORTAL_APPS_PORT={text!r} is not a port: give a number from 1 to 65535, e.g. 8001."
        )
    return int(text)


PORTAL_APPS_PORT = _apps_port(os.environ.get("PORTAL_APPS_PORT", "8001").strip())
PORTAL_HOST_BEAT_SECONDS = _positive_seconds("PORTAL_HOST_BEAT_SECONDS", 5.0)
PORTAL_APPS_URL = _apps_url(os.environ.get("PORTAL_APPS_URL", "").strip())


def _sandbox_mode(text: str) -> str:
    from django.core.exceptions import ImproperlyConfigured

    if text not in ("on", "off", "required"):
        raise ImproperlyConfigured(f"PORTAL_SANDBOX={text!r} is not on, off or required: leave it unset for on.")
    return text


def _sandbox_writable(text: str) -> list[str]:
    from django.core.exceptions import ImproperlyConfigured

    folders = [entry.strip() for entry in text.split(os.pathsep) if entry.strip()]
    for folder in folders:
        if not os.path.isabs(folder):
            raise ImproperlyConfigured(f"PORTAL_SANDBOX_WRITABLE names {folder!r}, which is not an absolute path: "
                                       "give each folder's full path, separated by ':'.")
    return folders


# The Landlock sandbox of web applications and gateways (portal/process/sandbox.py).
PORTAL_SANDBOX = _sandbox_mode(os.environ.get("PORTAL_SANDBOX", "on").strip().lower() or "on")
PORTAL_SANDBOX_WRITABLE = _sandbox_writable(os.environ.get("PORTAL_SANDBOX_WRITABLE", ""))


def _hosted_uids(text: str) -> tuple[int, int]:
    from portal.process.accounts import parse_uid_range

    try:
        return parse_uid_range(text)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{exc}; leave it unset for 40000-49999.") from None


def _hosted_users(text: str) -> str:
    if text not in ("auto", "off", "required"):
        raise ImproperlyConfigured(f"PORTAL_HOSTED_USERS={text!r} is not auto, off or required: "
                                   "leave it unset for auto.")
    return text


def _package_env() -> dict[str, str]:
    from portal.process.packages import index_environment

    try:
        return index_environment(os.environ.get("PORTAL_PACKAGE_INDEX", ""),
                                 os.environ.get("PORTAL_PACKAGE_FIND_LINKS", ""))
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


# Where pip finds packages for the builds (portal/process/packages.py): pip's variables, added to
# a build's environment only.
PORTAL_PACKAGE_ENV = _package_env()

# Who hosted code runs as (portal/process/accounts.py).
PORTAL_HOSTED_USERS = _hosted_users(os.environ.get("PORTAL_HOSTED_USERS", "auto").strip().lower() or "auto")
PORTAL_HOSTED_UIDS = _hosted_uids(os.environ.get("PORTAL_HOSTED_UIDS", "").strip() or "40000-49999")
# Only for a link (the launcher refuses a bad PORTAL_PORT when it starts the web server): none when not a port.
_portal_port = os.environ.get("PORTAL_PORT", "8000").strip()
PORTAL_PORT = int(_portal_port) if _portal_port.isascii() and _portal_port.isdigit() and 0 < int(_portal_port) < 65536 \
    else 0
# The front on the apps port (webapps/front/): the launcher starts it, webapps/routing.py writes
# the routes file it follows, and the applications' pages read the figures it measures.
WEBAPPS_ROUTES_FILE = paths.ROUTES_FILE
WEBAPPS_FRONT_METRICS_FILE = paths.FRONT_METRICS_FILE
