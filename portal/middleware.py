"""Every page requires login; this keeps a forgotten decorator from opening one."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse

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
