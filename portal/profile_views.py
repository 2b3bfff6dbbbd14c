"""The profile page: who you are, and your API tokens (create, list, revoke)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portal import roles, tokens
from portal.models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=ApiToken._meta.get_field("name").max_length,
        help_text="What the token is for, e.g. deploy script: it tells your tokens apart when you revoke one.",
        error_messages={"required": "Give the token a name, e.g. deploy script, to tell it apart later."},
    )

    def __init__(self, *args: object, user: object = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = user

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name, e.g. deploy script, to tell it apart later.")
        # Also what a reload of the page that showed a new token runs into: it creates no second one.
        if ApiToken.objects.filter(user=self.user, name=name, revoked_at__isnull=True).exists():
            raise forms.ValidationError(
                "You already have an active token named %(name)s: choose another name, or revoke that one first. "
                "(A token is shown only once, when it is created.)",
                params={"name": name},
            )
        return name


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """GET shows the page; POST creates a token (``name``) or revokes one (``revoke``: its id)."""
    new_token = None
    form = TokenForm()
    if request.method == "POST":
        if "revoke" in request.POST:
            return _revoke(request, request.POST["revoke"])
        form = TokenForm(request.POST, user=request.user)
        if form.is_valid():
            _row, new_token = tokens.create(request.user, form.cleaned_data["name"])
            # Rendered, not redirected: the token exists only in this response.
            form = TokenForm()
    context = {
        "form": form,
        "new_token": new_token,
        "api_tokens": ApiToken.objects.filter(user=request.user),
        "role": roles.role_of(request.user),
    }
    response = render(request, "portal/profile.html", context, status=400 if form.errors else 200)
    if new_token:
        # The token must not stay in a cache or the browser's back-forward store.
        response["Cache-Control"] = "no-store"
    return response


def _revoke(request: HttpRequest, value: str) -> HttpResponse:
    # Only the owner's own tokens are looked up, so another user's id finds nothing.
    # str.isdigit() alone takes "²" and 5,000 digits, which int() and the database refuse.
    number = int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None
    row = tokens.revoke(request.user, number) if number is not None else None
    if row is None:
        messages.error(
            request,
            "That token is not one of your active tokens: it may be revoked already. Reload the page to see them.",
        )
    else:
        messages.success(request, f"Token {row.name} ({row.prefix}…) was revoked: it no longer authenticates.")
    return redirect("profile")
