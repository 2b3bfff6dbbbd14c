"""The JSON API: read gateways and their state; start, stop and restart them.

    GET  /api/gateways/                       {"gateways": [status, ...]}
    GET  /api/gateways/NAME/                  status
    POST /api/gateways/NAME/start|stop|restart[?wait=1]

A caller authenticates with its session (a POST then needs the CSRF token, as
a form would) or with ``Authorization: Bearer <token>`` (no CSRF: a token is
not sent by a browser on its own). Every answer, errors included, is JSON with
an "error" key that says what is wrong and what to do.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from gateways import control
from gateways.models import Gateway
from portal import roles, tokens
from portal.process.states import GOAL

log = logging.getLogger(__name__)

NOT_AUTHENTICATED = "Log in, or send Authorization: Bearer <token> (create one on your profile page)."
NO_ROLE = "Your account has no role: ask an administrator."
TRUE_WORDS = {"1", "true", "yes", "on"}

ApiView = Callable[..., JsonResponse]


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, bad_token: bool = False, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.bad_token = bad_token
        self.extra = extra


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
        try:
            return tokens.authenticate(token)
        except tokens.TokenRefused as e:
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
            except ApiError as e:
                return error(e.status, str(e), bad_token=e.bad_token, **e.extra)
            except PermissionDenied as e:
                return error(403, str(e) or "You may not do this: ask an administrator for a role that may.")
            except Http404 as e:
                return error(404, str(e) or "Not found.")
            except Exception:
                # A traceback helps the person who runs the portal, not the caller.
                log.exception("API error on %s %s", request.method, request.path)
                return error(500, "The portal failed to answer: the error is in the portal's log.")

        return wrapper

    return decorate


def _get(name: str) -> Gateway:
    # Names are unique regardless of case, so a case-insensitive match is one gateway at most.
    gateway = Gateway.objects.filter(name__iexact=name).first()
    if gateway is None:
        raise Http404(f"There is no gateway named {name}")
    return gateway


def status(gateway: Gateway) -> dict[str, Any]:
    return {**control.status_of(gateway), "type": gateway.type}


@api_view("GET")
def gateway_list(request: HttpRequest, user: Any) -> JsonResponse:
    return JsonResponse({"gateways": [status(g) for g in Gateway.objects.all()]})


@api_view("GET")
def gateway_detail(request: HttpRequest, user: Any, name: str) -> JsonResponse:
    return JsonResponse(status(_get(name)))


@api_view("POST")
def gateway_action(request: HttpRequest, user: Any, name: str, action: str) -> JsonResponse:
    gateway = _get(name)
    wait = request.GET.get("wait", "").strip().lower()
    if wait and wait not in TRUE_WORDS | {"0", "false", "no", "off"}:
        raise ApiError(400, f"wait={wait} is not understood: use wait=1 to wait until it settles, or leave it out.")
    try:
        gateway = control.request(gateway, action, user, channel="api")
    except control.ControlError as e:
        # The only failures of a request are that the broker did not take the task.
        raise ApiError(503, str(e), **status(gateway)) from None
    mine = {"request": {"action": action, "seq": gateway.sent_seq}}
    if wait not in TRUE_WORDS:
        return JsonResponse({**status(gateway), **mine}, status=202)
    timeout = gateway.init_timeout + gateway.stop_timeout + 5
    try:
        gateway = control.wait_settled(gateway, action, timeout)
    except control.ControlError as e:
        raise ApiError(503, str(e), **status(gateway), **mine) from None
    replaced = control.superseded(gateway, action)
    if replaced:
        raise ApiError(409, replaced, **status(gateway), **mine)
    if gateway.state not in GOAL[action]:
        detail = f": {gateway.last_error}" if gateway.last_error else ""
        raise ApiError(
            409, f"The {action} of {gateway.name} ended {gateway.state}{detail}", **status(gateway), **mine
        )
    return JsonResponse({**status(gateway), **mine})


@api_view("GET", "POST")
def not_found(request: HttpRequest, user: Any, path: str = "") -> JsonResponse:
    raise Http404(
        f"There is no API at {request.path}: use /api/gateways/, /api/gateways/NAME/ or "
        "POST /api/gateways/NAME/start, stop or restart."
    )
