"""Failed logins: django-axes counts them and refuses an account and address, or an address, for a while.

django-axes (settings: AXES_*) records each failure of the login page, the admin's login and an
API token, and refuses further attempts once an account has failed AXES_FAILURE_LIMIT times from
one address, or an address PORTAL_LOGIN_ADDRESS_FAILURE_LIMIT times whatever the account, within
AXES_COOLOFF_TIME; a successful login starts the count again. What is the portal's own here: the
second, higher limit per address (axes has one limit for every parameter), the answer (the login
page, or the API's JSON, saying when to try again, with Retry-After), and the API tokens' part.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_ip_address, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone


def _token_account(token: str) -> str:
    """The "account" a token's failures are counted under: its first characters, as the profile
    page shows them (a token names no user until it works). So one wrong token from an address is
    refused after AXES_FAILURE_LIMIT tries, and the address after PORTAL_LOGIN_ADDRESS_FAILURE_LIMIT."""
    return f"(API token {token.strip()[:8]}…)"


# AccessAttempt.username is a varchar(255); no account's name is longer than Django's 150.
USERNAME_LENGTH = 150


def username(request: HttpRequest, credentials: dict | None = None) -> str:
    """The name a failure is counted under, as axes reads it (credentials first, then the form),
    cut to what an account's name can be: a 5,000-character name is no account, and on
    PostgreSQL it would not fit its column (a 500 instead of the login page's message)."""
    name = (credentials or {}).get(settings.AXES_USERNAME_FORM_FIELD) if credentials else None
    if name is None:
        name = request.POST.get(settings.AXES_USERNAME_FORM_FIELD, "") if request.method == "POST" else ""
    return str(name)[:USERNAME_LENGTH]


class Handler(AxesDatabaseHandler):
    """Axes's database handler, with a limit of its own for the address alone.

    AXES_LOCKOUT_PARAMETERS is [["username", "ip_address"], "ip_address"], and axes compares the
    largest count with its one AXES_FAILURE_LIMIT. The address's count is scaled here so that it
    reaches that limit at PORTAL_LOGIN_ADDRESS_FAILURE_LIMIT failures: several people behind one
    address (a proxy, a NAT) are not all locked out by one person's five typos.
    """

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        account_and_address, address = (
            attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        return max(account_and_address,
                   address * settings.AXES_FAILURE_LIMIT // settings.PORTAL_LOGIN_ADDRESS_FAILURE_LIMIT)


def _locked_until(request: HttpRequest) -> dt.datetime:
    """When the latest failure from this address stops counting."""
    address = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
    latest = AccessAttempt.objects.filter(ip_address=address).aggregate(at=Max("attempt_time"))["at"]
    return (latest or timezone.now()) + (get_cool_off(request) or dt.timedelta(0))


def try_again(request: HttpRequest) -> tuple[str, int]:
    """"try again in N minutes (at HH:MM TZ)" and the seconds to wait, for a refused request."""
    until = _locked_until(request)
    seconds = max(1, math.ceil((until - timezone.now()).total_seconds()))
    minutes = math.ceil(seconds / 60)
    local = timezone.localtime(until)
    return (f"try again in {minutes} minute{'s' if minutes != 1 else ''} "
            f"(at {local:%H:%M} {local.tzname()})", seconds)


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """The login page (the portal's or the admin's) with the reason and when to come back; for the
    API, its JSON error."""
    when, seconds = try_again(request)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"error": f"Too many failed API tokens from your address: {when}, with a valid token."},
            status=settings.AXES_HTTP_RESPONSE_CODE)
        response["Retry-After"] = str(seconds)
        return response
    message = (f"Too many failed logins from your address: logins are refused for a while. Check the user name "
               f"and password, then {when}; an administrator can unlock it sooner (Admin → Access attempts).")
    response = render(request, "registration/login.html", {
        "lockout": message, "next": request.POST.get("next") or request.GET.get("next", ""),
    }, status=settings.AXES_HTTP_RESPONSE_CODE)
    response["Retry-After"] = str(seconds)
    return response


def api_token_refused(request: HttpRequest, token: str) -> HttpResponse | None:
    """The answer to an API request that may not try a token now (it, or its address, failed too often)."""
    credentials = {settings.AXES_USERNAME_FORM_FIELD: _token_account(token)}
    if not AxesProxyHandler.is_locked(request, credentials):
        return None
    return lockout_response(request)


def api_token_failed(request: HttpRequest, token: str) -> None:
    """Count a refused API token against the caller's address, as a failed login."""
    credentials: dict[str, Any] = {settings.AXES_USERNAME_FORM_FIELD: _token_account(token)}
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
