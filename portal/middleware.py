"""Every page requires login; this keeps a forgotten decorator from opening one.

And the debug pages hide the broker's URLs, which hold the Redis password.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.debug import SafeExceptionReporterFilter as _DjangoReporterFilter

# Paths that must answer without a session: the login page itself, static
# files, and the API, which answers 401 in JSON itself (it also takes tokens).
OPEN_PREFIXES = ("/login/", "/static/", "/api/", "/favicon.ico")


class LoginRequiredEverywhere:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated and not request.path.startswith(OPEN_PREFIXES):
            if request.path.startswith("/admin/"):
                return self.get_response(request)  # the admin has its own login
            if getattr(request, "htmx", False):
                # A partial swap cannot show a login page; tell htmx to reload.
                response = JsonResponse({"error": "login required"}, status=401)
                response["HX-Redirect"] = settings.LOGIN_URL
                return response
            return redirect_to_login(request.get_full_path(), "/login/")
        return self.get_response(request)


class ContentSecurityPolicy:
    """Every response of the portal carries settings.CONTENT_SECURITY_POLICY (unless it set its own).

    No page has inline code (scripts and styles are files under static/, htmx's indicator style
    is in portal.css), so the policy needs no nonce and is one constant header. That is why this is
    a few lines of the portal's own rather than a package: it behaves the same on Django 5.2 and
    6.x, whereas Django's own CSP middleware (SECURE_CSP) exists only from 6.0 and django-csp 4.0
    declares support up to 5.2.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Django's debug pages (PORTAL_DEBUG=1 only) are made of inline styles and scripts.
        if settings.DEBUG and response.status_code in (404, 500):
            return response
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class RejectNulCharacters:
    """Answer 400 to a request with a NUL character in its path, query, cookies or form.

    No page has a use for one, PostgreSQL refuses them in text (a DataError, so a 500
    from any view that looks the value up), and SQLite would store them silently. Forms
    already refuse them field by field; this covers what reaches views and queries
    without a form: URL parts such as a gateway's name, filters, session cookies.
    """

    MESSAGE = ("The request contains a NUL character (%00), which no page accepts: "
               "remove it from the address or the form.")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = request.path.startswith("/api/")
        try:
            found = self._has_nul(request)
        except RequestDataTooBig:
            # Django's answer would be a bare "Bad Request (400)" page and a traceback in the log.
            return _refuse(api, 413, too_big_message(request))
        if found:
            return _refuse(api, 400, self.MESSAGE)
        return self.get_response(request)

    @staticmethod
    def _has_nul(request: HttpRequest) -> bool:
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return True
        if any("\x00" in key or "\x00" in value for key, value in request.COOKIES.items()):
            return True
        # The API's views read their bodies themselves (JSON, a merge file sent as it is, whatever
        # type the client gave it) and say what is wrong with one; read as a form, a merge file
        # sent by `curl --data-binary` was refused for its bytes as if they were in the address.
        if request.path.startswith("/api/"):
            return False
        if request.method == "POST" and request.content_type in ("application/x-www-form-urlencoded",
                                                                 "multipart/form-data"):
            return any("\x00" in key or any("\x00" in v for v in values) for key, values in request.POST.lists())
        return False


def too_big_message(request: HttpRequest) -> str:
    """Why a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE was refused, and what to do."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    size = request.META.get("CONTENT_LENGTH") or "more"
    size = f"{int(size):,}" if str(size).isdigit() else size
    return (f"The request sent {size} bytes of fields; the portal accepts at most {limit:,} bytes of them "
            f"({limit / 1024 / 1024:g} MiB). Send a large file as a file (a merge file: Choose file on the merge "
            "page, or POST it as the body of /api/cpf/merge), not as a form field.")


def _refuse(api: bool, status: int, message: str) -> HttpResponse:
    if api:
        return JsonResponse({"error": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class AdminIgnoresEmptyToField:
    """An empty ``_to_field`` in the admin means none, as Django means it to.

    Django's admin checks ``if to_field and ...`` but then looks the empty name up as a
    field of the model (``get_field('')``): a 500 on every change, delete and history
    page given ``?_to_field=`` (found by portal/tests/test_no_server_error.py). Dropping
    the empty parameter gives the page as without it; a non-empty one is left to the
    admin, which answers 400 to a field it does not allow.
    """

    NAME = "_to_field"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/admin/"):
            if request.GET.get(self.NAME, None) == "":
                request.GET = _without(request.GET, self.NAME)
            if (request.method == "POST" and request.content_type in ("application/x-www-form-urlencoded",
                                                                      "multipart/form-data")
                    and request.POST.get(self.NAME, None) == ""):
                request.POST = _without(request.POST, self.NAME)
        return self.get_response(request)


def _without(data, name):  # type: ignore[no-untyped-def]
    data = data.copy()
    data.pop(name, None)
    return data


class SafeExceptionReporterFilter(_DjangoReporterFilter):
    """Django's filter for its debug pages and error mails, which also hides the broker's URLs.

    Django hides a setting by its name (KEY, SECRET, PASS, TOKEN...); REDIS_URL,
    CELERY_BROKER_URL and CELERY_RESULT_BACKEND hold the Redis password but have
    none of those words.
    """

    hidden_settings = re.compile(
        _DjangoReporterFilter.hidden_settings.pattern + "|REDIS_URL|BROKER_URL|RESULT_BACKEND", flags=re.I
    )
