"""The JSON API of web applications: read them and their state; create, change and delete them;
start, stop and restart them.

    GET    /api/webapps/                       {"webapps": [status, ...]}
    POST   /api/webapps/                       create: {"name": "/flask", "directory": …, …} -> 201
    GET    /api/webapps/PATH/                  status + definition (PATH without its leading slash: shop/api)
    PATCH  /api/webapps/PATH/[?restart=1]      change the fields given (and restart it when running)
    DELETE /api/webapps/PATH/                  delete (409 while it runs: stop it first)
    POST   /api/webapps/PATH/start|stop|restart[?wait=1]

A path may have several segments, so the action is the last one of a POST; a GET, a PATCH
and a DELETE name the application at the whole path. Creating, changing and deleting validate
with the page's form and save through the page's services (processes/definition_api.py).
Authentication, roles and JSON errors are the portal's (portal/api.py); starting and waiting
are every kind's (processes/definition_api.py).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse

from portal.api import api_view
from processes import control, definition_api
from webapps.checks import FixKeys
from webapps.forms import WebAppForm
from webapps.models import WebApp


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


# The import check's advice names the keys of the API's body.
KIND = definition_api.ApiKind(
    form_class=WebAppForm, status=status,
    form_kwargs={"fix_keys": FixKeys(requirements_file='"requirements_file": ',
                                     python_executable='"python_executable": ')},
    missing="There is no web application at /{name}: GET /api/webapps/ lists them.",
)
_get = KIND.get


@api_view("GET", "POST")
def webapp_list(request: HttpRequest, user: Any) -> JsonResponse:
    if request.method == "POST":
        return definition_api.create(request, user, KIND)
    return JsonResponse({"webapps": [status(w) for w in WebApp.objects.all()]})


@api_view("GET", "POST", "PATCH", "DELETE")
def webapp_resource(request: HttpRequest, user: Any, path: str) -> JsonResponse:
    if request.method == "GET":
        return JsonResponse(definition_api.answer(_get(path), KIND))
    if request.method == "PATCH":
        return definition_api.update(request, user, _get(path), KIND)
    if request.method == "DELETE":
        return definition_api.delete(request, user, _get(path), KIND)
    rest, _, action = path.strip("/").rpartition("/")
    if action not in control.ACTIONS or not rest:
        raise Http404(f"There is no API at POST {request.path}: use POST /api/webapps/PATH/start, stop or restart.")
    return definition_api.act(request, user, _get(rest), action, status)
