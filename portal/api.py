"""What every JSON API view of the portal shares: who is calling, and errors in JSON.

A caller authenticates with its session (a POST then needs the CSRF token, as
a form would) or with ``Authorization: Bearer <token>`` (no CSRF: a token is
not sent by a browser on its own). Every answer, errors included, is JSON with
an "error" key that says what is wrong and what to do. The views themselves
belong to the apps (gateways/api.py); they are wrapped with :func:`api_view`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from portal import lockout, roles, tokens

log = logging.getLogger(__name__)

NOT_AUTHENTICATED = "Log in, or send Authorization: Bearer <token> (create one on your profile page)."
NO_ROLE = "Your account has no role: ask an administrator."

ApiView = Callable[..., JsonResponse]


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, bad_token: bool = False, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.bad_token = bad_token
        self.extra = extra


class Refused(Exception):
    """A request answered before it is looked at (its address is locked out): ``response``."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__()
        self.response = response


def error(status: int, message: str, *, bad_token: bool = False, **extra: Any) -> JsonResponse:
    response = JsonResponse({"error": message, **extra}, status=status)
    if status == 401:
        # RFC 6750: say which scheme to use, and whether the token sent was the problem.
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"' if bad_token else "Bearer"
    return response


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering with the reason instead of an HTML page."""

    def _reject(self, request: HttpRequest, reason: str) -> str:  # type: ignore[override]
        return reason


def _authenticate(request: HttpRequest) -> Any:
    """The user behind the request: a bearer token first, then the session."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401, "The Authorization header must be `Bearer <token>`; create a token on your profile page."
            )
        refused = lockout.api_token_refused(request, token)
        if refused is not None:
            raise Refused(refused)
        try:
            return tokens.authenticate(token)
        except tokens.TokenRefused as e:
            lockout.api_token_failed(request, token)
            raise ApiError(401, str(e), bad_token=True) from None
    user = request.user
    if not user.is_authenticated:
        raise ApiError(401, NOT_AUTHENTICATED)
    if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
        # The view is csrf_exempt so that token callers need no CSRF token;
        # a session is what a forged cross-site request would ride on, so check it here.
        check = _CsrfCheck(lambda r: HttpResponse())
        check.process_request(request)
        reason = check.process_view(request, lambda r: HttpResponse(), (), {})
        if reason:
            raise ApiError(
                403,
                f"CSRF check failed ({reason}): send the X-CSRFToken header with the "
                f"{settings.CSRF_COOKIE_NAME} cookie's value, "
                "or authenticate with Authorization: Bearer <token> instead of the session.",
            )
    return user


def api_view(*methods: str) -> Callable[[ApiView], Callable[..., HttpResponse]]:
    """Authentication, the method check and JSON errors for one API view."""

    def decorate(view: ApiView) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    response = error(
                        405, f"{request.method} is not allowed here: use {' or '.join(methods)}."
                    )
                    response["Allow"] = ", ".join(methods)
                    return response
                user = _authenticate(request)
                if not roles.can_view(user):
                    raise PermissionDenied(NO_ROLE)
                return view(request, user, *args, **kwargs)
            except Refused as e:
                return e.response
            except ApiError as e:
                return error(e.status, str(e), bad_token=e.bad_token, **e.extra)
            except PermissionDenied as e:
                return error(403, str(e) or "You may not do this: ask an administrator for a role that may.")
            except Http404 as e:
                return error(404, str(e) or "Not found.")
            except RequestDataTooBig:
                from portal.middleware import too_big_message

                return error(413, too_big_message(request))
            except Exception:
                # A traceback helps the person who runs the portal, not the caller.
                log.exception("API error on %s %s", request.method, request.path)
                return error(500, "The portal failed to answer: the error is in the portal's log.")

        return wrapper

    return decorate


@api_view("GET", "POST")
def not_found(request: HttpRequest, user: Any, path: str = "") -> JsonResponse:
    """Any other path under /api/ answers in JSON too, not with the HTML 404 page."""
    raise Http404(
        f"There is no API at {request.path}: use /api/gateways/ (GET, POST), /api/gateways/NAME/ (GET, PATCH, "
        "DELETE), POST /api/gateways/NAME/start, stop or restart, or /api/webapps/ or /api/programs/ the same way."
    )
