"""The JSON API of programs: read them and their state; create, change and delete them; start, stop and restart them.

    GET    /api/programs/                       {"programs": [status, ...]}
    POST   /api/programs/                       create: {"name": …, "command": …, …} -> 201 status + definition
    GET    /api/programs/NAME/                  status + definition
    PATCH  /api/programs/NAME/[?restart=1]      change the fields given (and restart it when running)
    DELETE /api/programs/NAME/                  delete (409 while it runs: stop it first)
    POST   /api/programs/NAME/start|stop|restart[?wait=1]

The body's keys are ProgramForm's fields; ``environment`` and ``secret_environment`` may be
objects ({"QUEUE": "emails"}); a secret's value is never in an answer, only its name.
Everything else (authentication, roles, JSON errors, validation through the form, the history)
is the shared layer's: portal/api.py and processes/definition_api.py.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse

from portal.api import api_view
from processes import control, definition_api
from programs.forms import ProgramForm
from programs.models import Program


def _get(name: str) -> Program:
    # Names are unique regardless of case, so a case-insensitive match is one program at most.
    program = Program.objects.filter(name__iexact=name).first()
    if program is None:
        raise Http404(f"There is no program named {name}")
    return program


KIND = definition_api.ApiKind(form_class=ProgramForm, status=control.status_of)


@api_view("GET", "POST")
def program_list(request: HttpRequest, user: Any) -> JsonResponse:
    if request.method == "POST":
        return definition_api.create(request, user, KIND)
    return JsonResponse({"programs": [control.status_of(p) for p in Program.objects.all()]})


@api_view("GET", "PATCH", "DELETE")
def program_detail(request: HttpRequest, user: Any, name: str) -> JsonResponse:
    program = _get(name)
    if request.method == "PATCH":
        return definition_api.update(request, user, program, KIND)
    if request.method == "DELETE":
        return definition_api.delete(request, user, program, KIND)
    return JsonResponse(definition_api.answer(program, KIND))


@api_view("POST")
def program_action(request: HttpRequest, user: Any, name: str, action: str) -> JsonResponse:
    return definition_api.act(request, user, _get(name), action, control.status_of)
