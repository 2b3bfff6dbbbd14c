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

from gateways.forms import GatewayForm
from gateways.models import Gateway
from processes import control, definition_api


def status(gateway: Gateway) -> dict[str, Any]:
    return {**control.status_of(gateway), "type": gateway.type}


KIND = definition_api.ApiKind(form_class=GatewayForm, status=status)
