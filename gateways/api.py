"""The JSON API: read gateways and their state; create, change and delete them; start, stop and restart them.

    GET    /api/gateways/                       {"gateways": [status, ...]}
    POST   /api/gateways/                       create: {"name": …, "port": …, …} -> 201 status + definition
    GET    /api/gateways/NAME/                  status + definition
    PATCH  /api/gateways/NAME/[?restart=1]      change the fields given (and restart it when running)
    DELETE /api/gateways/NAME/                  delete (409 while it runs: stop it first)
    POST   /api/gateways/NAME/start|stop|restart[?wait=1]

Creating, changing and deleting validate with the page's form and save through the page's
services (processes/definition_api.py).

Authentication (session or ``Authorization: Bearer <token>``), the role check and
the JSON errors are the portal's, shared by every app's API (portal/api.py).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse

from gateways.forms import GatewayForm
from gateways.models import Gateway
from portal.api import api_view
from processes import control, definition_api


def _get(name: str) -> Gateway:
    # Names are unique regardless of case, so a case-insensitive match is one gateway at most.
    gateway = Gateway.objects.filter(name__iexact=name).first()
    if gateway is None:
        raise Http404(f"There is no gateway named {name}")
    return gateway


def status(gateway: Gateway) -> dict[str, Any]:
    return {**control.status_of(gateway), "type": gateway.type}


KIND = definition_api.ApiKind(form_class=GatewayForm, status=status)


@api_view("GET", "POST")
def gateway_list(request: HttpRequest, user: Any) -> JsonResponse:
    if request.method == "POST":
        return definition_api.create(request, user, KIND)
    return JsonResponse({"gateways": [status(g) for g in Gateway.objects.all()]})


@api_view("GET", "PATCH", "DELETE")
def gateway_detail(request: HttpRequest, user: Any, name: str) -> JsonResponse:
    gateway = _get(name)
    if request.method == "PATCH":
        return definition_api.update(request, user, gateway, KIND)
    if request.method == "DELETE":
        return definition_api.delete(request, user, gateway, KIND)
    return JsonResponse(definition_api.answer(gateway, KIND))


@api_view("POST")
def gateway_action(request: HttpRequest, user: Any, name: str, action: str) -> JsonResponse:
    return definition_api.act(request, user, _get(name), action, status)
