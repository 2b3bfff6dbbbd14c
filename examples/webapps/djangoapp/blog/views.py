"""Posts and comments as a JSON API, a gateway ping, and the index page.

The API has no login (it is an example); it is exempt from CSRF because no cookie authorises it.
The admin keeps Django's full CSRF and session protection.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from django.core.exceptions import DisallowedHost
from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from blog.models import Comment, Post

TITLE_MAX = Post._meta.get_field("title").max_length


class BadInput(Exception):
    """A request body that cannot be used; the message says what to send instead."""


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def as_dict(obj: Model) -> dict[str, Any]:
    if isinstance(obj, Post):
        return {"id": obj.pk, "title": obj.title, "content": obj.content}
    return {"id": obj.pk, "post_id": obj.post_id, "content": obj.content}


def body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"null")
    except ValueError as exc:
        raise BadInput(f"the body is not valid JSON ({exc}); send a JSON object") from None
    if not isinstance(data, dict):
        raise BadInput('the body must be a JSON object, such as {"title": "Hello", "content": "First post"}')
    return data


def text_field(data: dict[str, Any], name: str, max_length: int | None = None) -> str:
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{name} must be a non-empty string")
    if max_length and len(value) > max_length:
        raise BadInput(f"{name} is {len(value)} characters long; the most is {max_length}")
    return value


def post_id_field(data: dict[str, Any]) -> int:
    value = data["post_id"]
    if type(value) is not int:
        raise BadInput("post_id must be the integer id of an existing post")
    if not Post.objects.filter(pk=value).exists():
        raise BadInput(f"there is no post {value}; create it first (POST {reverse('posts')}) or use an existing id")
    return value


def fields(request: HttpRequest, allowed: tuple[str, ...], partial: bool) -> dict[str, Any]:
    """The allowed fields of the body, all required unless ``partial`` (PATCH), at least one."""
    data = body(request)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        hint = " (ids are given by the server)" if "id" in unknown else ""
        raise BadInput(f"unknown field(s) {', '.join(unknown)}{hint}; allowed: {', '.join(allowed)}")
    missing = [name for name in allowed if name not in data]
    if missing and not partial:
        raise BadInput(f"missing field(s) {', '.join(missing)}; {request.method} needs all of {', '.join(allowed)}")
    if partial and not data:
        raise BadInput(f"nothing to change; send one or more of {', '.join(allowed)}")
    checks: dict[str, Callable[[], Any]] = {
        "title": lambda: text_field(data, "title", TITLE_MAX),
        "content": lambda: text_field(data, "content"),
        "post_id": lambda: post_id_field(data),
    }
    return {name: checks[name]() for name in allowed if name in data}


RESOURCES: dict[str, tuple[type[Model], tuple[str, ...]]] = {
    "post": (Post, ("title", "content")),
    "comment": (Comment, ("post_id", "content")),
}


def api(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """CSRF-exempt, and bad input answers 400 with its message."""

    @csrf_exempt
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except BadInput as exc:
            return error(400, str(exc))

    return wrapper


def not_allowed(request: HttpRequest, allowed: str) -> JsonResponse:
    response = error(405, f"{request.method} is not allowed on {request.path}; use {allowed}")
    response["Allow"] = allowed
    return response


def collection(request: HttpRequest, kind: str) -> HttpResponse:
    model, allowed = RESOURCES[kind]
    if request.method == "POST":
        obj = model.objects.create(**fields(request, allowed, partial=False))
        response = JsonResponse(as_dict(obj), status=201)
        response["Location"] = reverse(kind, args=[obj.pk])
        return response
    if request.method not in ("GET", "HEAD"):
        return not_allowed(request, "GET, POST")
    items = model.objects.order_by("pk")
    if kind == "comment" and "post_id" in request.GET:
        post_filter = request.GET["post_id"]
        if not post_filter.isdigit():
            raise BadInput(f"post_id={post_filter!r} is not a post id; use ?post_id=1")
        items = items.filter(post_id=int(post_filter))
    return JsonResponse([as_dict(obj) for obj in items], safe=False)


def item(request: HttpRequest, kind: str, item_id: int) -> HttpResponse:
    model, allowed = RESOURCES[kind]
    if request.method not in ("GET", "HEAD", "PUT", "PATCH", "DELETE"):
        return not_allowed(request, "GET, PUT, PATCH, DELETE")
    obj = model.objects.filter(pk=item_id).first()
    if obj is None:
        return error(404, f"there is no {kind} {item_id}; GET {reverse(kind + 's')} lists them")
    if request.method == "DELETE":
        obj.delete()
        return HttpResponse(status=204)
    if request.method in ("PUT", "PATCH"):
        with transaction.atomic():
            for name, value in fields(request, allowed, partial=request.method == "PATCH").items():
                setattr(obj, name, value)
            obj.save()
    return JsonResponse(as_dict(obj))


@api
def posts(request: HttpRequest) -> HttpResponse:
    return collection(request, "post")


@api
def post(request: HttpRequest, item_id: int) -> HttpResponse:
    return item(request, "post", item_id)


@api
def comments(request: HttpRequest) -> HttpResponse:
    return collection(request, "comment")


@api
def comment(request: HttpRequest, item_id: int) -> HttpResponse:
    return item(request, "comment", item_id)


def interop(request: HttpRequest) -> JsonResponse:
    """Ping the gateway named by GATEWAY_HOST/GATEWAY_PORT through the portal's client."""
    host, port = os.environ.get("GATEWAY_HOST", ""), os.environ.get("GATEWAY_PORT", "")
    if not host or not port.isdigit():
        return error(503, "no gateway configured: set GATEWAY_HOST and GATEWAY_PORT (and GATEWAY_PASSPHRASE "
                          "when the gateway has one) in this application's environment")
    try:
        from gateways.client import GatewayError, connect
    except ImportError as exc:
        return error(503, f"gateways.client cannot be imported ({exc}); put the portal's directory on PYTHONPATH")
    started = time.perf_counter()
    try:
        with connect(host, int(port), passphrase=os.environ.get("GATEWAY_PASSPHRASE") or None, timeout=5) as gw:
            pong, version = gw.ping(), gw.version()
    except (GatewayError, OSError) as exc:
        return error(503, f"the gateway at {host}:{port} did not answer ({exc}); start it, or fix GATEWAY_HOST, "
                          "GATEWAY_PORT or GATEWAY_PASSPHRASE")
    return JsonResponse({
        "gateway": f"{host}:{port}", "ping": "pong" if pong else "no answer", "python": version.get("python"),
        "pid": version.get("pid"), "milliseconds": round((time.perf_counter() - started) * 1000, 2),
    })


def index(request: HttpRequest) -> HttpResponse:
    # Links to a post only when there is one: a fresh database has none.
    first = Post.objects.order_by("pk").values_list("pk", flat=True).first()
    links = [("Posts", reverse("posts"))]
    if first is not None:
        links.append((f"Post {first}", reverse("post", args=[first])))
    links.append(("Comments", reverse("comments")))
    if first is not None:
        links.append((f"Comments on post {first}", reverse("comments") + f"?post_id={first}"))
    links += [("Gateway ping", reverse("interop")), ("Admin", reverse("admin:index"))]
    return render(request, "blog/index.html", {"links": links, "no_post": first is None, "posts": reverse("posts"),
                                               "mount": request.META.get("SCRIPT_NAME") or "/"})


# Errors answer JSON too, with what to do -------------------------------------------------


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error(404, f"nothing at {request.path}; the index {reverse('index')} lists the endpoints")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, DisallowedHost):
        return error(400, f"{exception} The variable DJANGO_ALLOWED_HOSTS sets them (comma-separated).")
    return error(400, f"bad request ({exception})")


def server_error(request: HttpRequest) -> JsonResponse:
    return error(500, "the application failed; its log has the traceback")
