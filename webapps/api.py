"""The JSON API of web applications: read them and their state; start, stop and restart them.

    GET  /api/webapps/                         {"webapps": [status, ...]}
    GET  /api/webapps/PATH/                    status (PATH without its leading slash: flask, shop/api)
    POST /api/webapps/PATH/start|stop|restart[?wait=1]

A path may have several segments, so the action is the last one of a POST; a GET always
reads the application at the whole path. Authentication, roles and JSON errors are the
portal's (portal/api.py); starting and waiting are the gateways' API's (gateways.api.act).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse

from gateways.api import act
from portal.api import api_view
from processes import control
from webapps.models import WebApp


def _get(path: str) -> WebApp:
    name = "/" + path.strip("/")
    webapp = WebApp.objects.filter(name__iexact=name).first()
    if webapp is None:
        raise Http404(f"There is no web application at {name}: GET /api/webapps/ lists them.")
    return webapp


def status(webapp: WebApp) -> dict[str, Any]:
    """The state as for every process, and the definition without secret values."""
    return {
        **control.status_of(webapp),
        "directory": webapp.directory,
        "module": webapp.module,
        "callable": webapp.callable,
        "debug": webapp.debug,
        "workers": webapp.workers,
        "threads": webapp.threads,
        "environment": webapp.environment,
        "secret_environment": sorted(webapp.secret_environment or {}),
        "static_files": webapp.static_files,
    }


@api_view("GET")
def webapp_list(request: HttpRequest, user: Any) -> JsonResponse:
    return JsonResponse({"webapps": [status(w) for w in WebApp.objects.all()]})


@api_view("GET", "POST")
def webapp_resource(request: HttpRequest, user: Any, path: str) -> JsonResponse:
    if request.method == "GET":
        return JsonResponse(status(_get(path)))
    rest, _, action = path.strip("/").rpartition("/")
    if action not in control.ACTIONS or not rest:
        raise Http404(f"There is no API at POST {request.path}: use POST /api/webapps/PATH/start, stop or restart.")
    return act(request, user, _get(rest), action, status)
