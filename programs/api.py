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

from processes import control, definition_api
from programs.forms import ProgramForm

KIND = definition_api.ApiKind(form_class=ProgramForm, status=control.status_of)
