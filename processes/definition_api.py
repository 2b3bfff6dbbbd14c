"""Create, change, delete, start, stop and restart definitions over the JSON API: the same for every kind.

A kind's API view finds the definition (its own 404) and calls these with its :class:`ApiKind`:
the form the pages use (no second copy of the rules), its ``services`` module (the permission,
"stop it first", the history) and its status. The body is one JSON object whose keys are the
form's fields; it becomes what the form posts, so the form validates it as it validates a page:

* a boolean (``"use_passphrase": true``) becomes a ticked or unticked box;
* an object (``"environment": {"A": "1"}``) becomes its ``NAME=value`` lines, and ``null`` as a
  value keeps a secret's current value (the form's ``NAME=``);
* a number or a string is posted as written; ``null`` posts an empty field.

Errors are per field, under the same keys (``{"errors": {"port": ["…"]}}``); an unknown key is
refused by name. A PATCH starts from the definition as stored (``editing.form_data_of``), so the
fields not given keep their values. A secret (a passphrase, a secret variable's value) is never
in an answer: the definition shows whether a passphrase is used and secret variables by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import URLPattern, path, re_path

from portal import roles
from portal.api import ApiError, api_view
from portal.process.states import GOAL
from processes import control, editing, services
from processes.adapters import adapter_of

# A definition is a few hundred bytes; a secret variables' list at most a few hundred kilobytes.
MAX_BODY = 1024 * 1024
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}
NON_FIELD = "non_field_errors"


@dataclass(frozen=True)
class ApiKind:
    """What the shared views need of a kind."""

    form_class: type[forms.ModelForm]
    status: Callable[[Any], dict[str, Any]]
    # Extra arguments of the form (a web application's messages name the API's keys).
    form_kwargs: dict[str, Any] = field(default_factory=dict)
    # What the 404 of a name that finds none says ({name}: the name as the URL gave it).
    missing: str = "There is no {label} named {name}"

    @property
    def model(self) -> Any:
        return self.form_class._meta.model

    @property
    def label(self) -> str:
        return adapter_of(self.model).label

    @property
    def label_plural(self) -> str:
        return adapter_of(self.model).label_plural

    def get(self, name: str) -> Any:
        """The definition the URL names (``Definition.lookup``: names are unique regardless of case),
        or a JSON 404 saying so."""
        obj = self.model.objects.filter(**self.model.lookup(name)).first() if name.strip("/") else None
        if obj is None:
            raise Http404(self.missing.format(label=self.label, name=name.strip("/")))
        return obj


def definition_of(obj: Any, kind: ApiKind) -> dict[str, Any]:
    """The definition under its form's keys, secrets left out: a secret variable by its name only,
    a passphrase not at all (``use_passphrase`` says whether there is one)."""
    model_fields = {f.name for f in obj._meta.get_fields()}
    secret = set(getattr(obj, "SECRET_FIELDS", ()))
    values: dict[str, Any] = {}
    for name in kind.form_class.base_fields:
        if name not in model_fields:
            continue  # a form-only field: the passphrase
        value = getattr(obj, name)
        values[name] = sorted(value or {}) if name in secret else value
    return values


def answer(obj: Any, kind: ApiKind, **extra: Any) -> dict[str, Any]:
    return {**kind.status(obj), "definition": definition_of(obj, kind), **extra}


def _require_admin(user: Any, kind: ApiKind, verb: str) -> None:
    # Before the body is read: who may not define learns nothing of the rules or the other definitions.
    if not roles.can_administer(user):
        raise PermissionDenied(
            f"Only an Administrator may {verb} {kind.label} definitions; ask an administrator for that role."
        )


def _flag(request: HttpRequest, name: str) -> bool:
    value = request.GET.get(name, "").strip().lower()
    if value not in TRUE_WORDS | FALSE_WORDS:
        raise ApiError(400, f"{name}={value} is not understood: use {name}=1, or leave it out.")
    return value in TRUE_WORDS


def read_body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object of the body, or a 4xx that says what to send."""
    if request.content_type != "application/json":
        raise ApiError(415, f"The body must be JSON (Content-Type: application/json), not "
                            f"{request.content_type or 'untyped'}: send one object such as {{\"port\": 25002}}.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise ApiError(413, f"The body has {length:,} bytes; a definition has at most {MAX_BODY:,}: "
                            "send only the definition's fields.")
    try:
        # Decoded here: json.loads would take bytes for UTF-16 or UTF-32 when they look like it.
        payload = json.loads(request.body.decode("utf-8") or "null")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"The body is not UTF-8 (byte {e.start}): send the JSON as UTF-8.") from None
    except json.JSONDecodeError as e:
        raise ApiError(400, f"The body is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}): "
                            "send one object such as {\"port\": 25002}.") from None
    if not isinstance(payload, dict):
        raise ApiError(400, f"The body must be a JSON object of fields, not {_json_type(payload)}: "
                            "send one object such as {\"port\": 25002}.")
    return payload


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def form_data(payload: dict[str, Any], form: forms.BaseForm, base: dict[str, Any], kind: ApiKind,
              creating: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``base`` with the payload's fields written as the form posts them, and the errors of the
    keys that cannot be (unknown, not changeable, of the wrong JSON type)."""
    data = dict(base)
    errors: dict[str, list[str]] = {}
    known = list(form.fields)
    for key, value in payload.items():
        form_field = form.fields.get(key)
        if form_field is None:
            errors[key] = [f"There is no field {key!r}: a {kind.label} has {', '.join(known)}."]
            continue
        if form_field.disabled and not creating:
            errors[key] = [f"The {key} of a {kind.label} cannot change once it is saved: create a new one "
                           "with the new value and delete this one."]
            continue
        if isinstance(form_field, forms.BooleanField):
            if not isinstance(value, bool):
                errors[key] = [f"Give true or false, not {_json_type(value)}."]
                continue
            data[key] = "on" if value else ""
        elif isinstance(value, dict):
            if not _takes_assignments(kind, key):
                errors[key] = ["Give a string or a number, not an object."]
                continue
            bad = [name for name, v in value.items() if v is not None and not isinstance(v, (str, int, float))]
            if bad:
                errors[key] = [f"The value of {', '.join(bad)} must be a string (or null to keep a secret's value)."]
                continue
            data[key] = "\n".join(f"{name}=" if v is None else f"{name}={v}" for name, v in value.items())
        elif isinstance(value, (list, bool)):
            errors[key] = [f"Give a string or a number, not {_json_type(value)}."]
        else:
            data[key] = "" if value is None else str(value)
    return data, errors


def _takes_assignments(kind: ApiKind, key: str) -> bool:
    """Whether the field holds NAME=value pairs (a JSON field of the model): an object is its value."""
    from django.core.exceptions import FieldDoesNotExist
    from django.db.models import JSONField

    try:
        return isinstance(kind.model._meta.get_field(key), JSONField)
    except FieldDoesNotExist:
        return False


def form_errors(form: forms.BaseForm) -> dict[str, list[str]]:
    """The form's errors under the API's keys (the definition's own under ``non_field_errors``)."""
    return {NON_FIELD if name == "__all__" else name: list(messages) for name, messages in form.errors.items()}


def _refused(kind: ApiKind, verb: str, errors: dict[str, list[str]]) -> ApiError:
    whole = errors.get(NON_FIELD, [])
    fields = [name for name in errors if name != NON_FIELD]
    parts = []
    if fields:
        parts.append(f"correct {', '.join(fields)} (see errors)")
    parts += whole
    return ApiError(400, f"The {kind.label} was not {verb}: {'; '.join(parts)}", errors=errors)


def create(request: HttpRequest, user: Any, kind: ApiKind) -> JsonResponse:
    """POST on the list: a new definition from the body (the model's defaults for what it leaves out)."""
    _require_admin(user, kind, "create")
    payload = read_body(request)
    base = editing.form_data_of(kind.form_class, kind.model())
    data, errors = form_data(payload, kind.form_class(**kind.form_kwargs), base, kind, creating=True)
    if errors:
        raise _refused(kind, "created", errors)
    form = kind.form_class(data, **kind.form_kwargs)
    if not form.is_valid():
        raise _refused(kind, "created", form_errors(form))
    saved = editing.save(form, user, actor=control.trigger_for(user, "api"), channel="api")
    return JsonResponse(answer(saved.obj, kind, message=saved.message, warnings=saved.warnings), status=201)


def update(request: HttpRequest, user: Any, obj: Any, kind: ApiKind) -> JsonResponse:
    """PATCH on a definition: the fields of the body change, the rest stays; ``?restart=1`` restarts
    it with the new definition when it is running (processes.editing)."""
    _require_admin(user, kind, "edit")
    restart = _flag(request, "restart")
    payload = read_body(request)
    base = editing.form_data_of(kind.form_class, obj)
    data, errors = form_data(payload, kind.form_class(instance=obj, **kind.form_kwargs), base, kind, creating=False)
    if errors:
        raise _refused(kind, "saved", errors)
    form = kind.form_class(data, instance=obj, **kind.form_kwargs)
    if not form.is_valid():
        raise _refused(kind, "saved", form_errors(form))
    try:
        saved = editing.save(form, user, then=editing.RESTART if restart else "",
                             actor=control.trigger_for(user, "api"), channel="api")
    except control.ControlError as e:
        hint = ""
        if not restart and editing.may_restart(user):
            hint = f" Or send the change with ?restart=1: it is saved and {obj.name} restarted with it."
        obj.refresh_from_db()
        raise ApiError(409, f"Nothing was saved: {e}{hint}", **kind.status(obj)) from None
    extra: dict[str, Any] = {"message": saved.message, "warnings": saved.warnings}
    if saved.restart_asked:
        extra["restart"] = {"requested": saved.restarted, **({"reason": saved.not_restarted}
                                                             if saved.not_restarted else {})}
    saved.obj.refresh_from_db()
    return JsonResponse(answer(saved.obj, kind, **extra))


def delete(request: HttpRequest, user: Any, obj: Any, kind: ApiKind) -> JsonResponse:
    """DELETE on a definition: as the page's Delete, refused while it runs (stop it first)."""
    _require_admin(user, kind, "delete")
    try:
        services.delete_definition(obj, user, actor=control.trigger_for(user, "api"))
    except control.ControlError as e:
        raise ApiError(409, str(e), **kind.status(obj)) from None
    return JsonResponse({"deleted": obj.name, "message": f"{kind.label.capitalize()} {obj.name} was deleted."})


def act(request: HttpRequest, user: Any, obj: Any, action: str, status: Any) -> JsonResponse:
    """Start, stop or restart a definition of any kind: 202 once sent, or with ?wait=1 the settled
    state, 409 when it did not end where asked; ``status`` is the kind's status of one."""
    wait = request.GET.get("wait", "").strip().lower()
    if wait not in TRUE_WORDS | FALSE_WORDS:
        raise ApiError(400, f"wait={wait} is not understood: use wait=1 to wait until it settles, or leave it out.")
    try:
        obj = control.request(obj, action, user, channel="api")
    except control.ControlError as e:
        # The only failures of a request are that the broker did not take the task.
        raise ApiError(503, str(e), **status(obj)) from None
    mine = {"request": {"action": action, "seq": obj.sent_seq}}
    if wait not in TRUE_WORDS:
        return JsonResponse({**status(obj), **mine}, status=202)
    timeout = obj.init_timeout + obj.stop_timeout + 5
    try:
        obj = control.wait_settled(obj, action, timeout)
    except control.ControlError as e:
        raise ApiError(503, str(e), **status(obj), **mine) from None
    replaced = control.superseded(obj, action)
    if replaced:
        raise ApiError(409, replaced, **status(obj), **mine)
    if obj.state not in GOAL[action]:
        detail = f": {obj.last_error}" if obj.last_error else ""
        raise ApiError(409, f"The {action} of {obj.name} ended {obj.state}{detail}", **status(obj), **mine)
    if missed := control.other_hosts_missed(obj, action):
        raise ApiError(409, missed, **status(obj), **mine)
    return JsonResponse({**status(obj), **mine})


def api_urls(kind: ApiKind, names: tuple[str, str, str] = ("list", "detail", "action")) -> list[URLPattern]:
    """The API of a kind whose definitions a URL names in one segment, under its prefix:

        GET    ./                         {"<label_plural>": [status, ...]}
        POST   ./                         create -> 201 status + definition
        GET    ./NAME/                    status + definition
        PATCH  ./NAME/[?restart=1]        change the fields given (and restart it when it runs)
        DELETE ./NAME/                    delete (409 while it runs)
        POST   ./NAME/start|stop|restart[?wait=1]   (with or without the slash: a POST is not redirected)

    ``names``: the URL names of the three (the gateways' API keeps the ones it always had)."""
    key = adapter_of(kind.model).app

    @api_view("GET", "POST")
    def listing(request: HttpRequest, user: Any) -> JsonResponse:
        if request.method == "POST":
            return create(request, user, kind)
        return JsonResponse({key: [kind.status(obj) for obj in kind.model.objects.all()]})

    @api_view("GET", "PATCH", "DELETE")
    def detail(request: HttpRequest, user: Any, name: str) -> JsonResponse:
        obj = kind.get(name)
        if request.method == "PATCH":
            return update(request, user, obj, kind)
        if request.method == "DELETE":
            return delete(request, user, obj, kind)
        return JsonResponse(answer(obj, kind))

    @api_view("POST")
    def action(request: HttpRequest, user: Any, name: str, action: str) -> JsonResponse:
        return act(request, user, kind.get(name), action, kind.status)

    actions = "|".join(control.ACTIONS)
    return [
        path("", listing, name=names[0]),
        path("<str:name>/", detail, name=names[1]),
        re_path(rf"^(?P<name>[^/]+)/(?P<action>{actions})/?$", action, name=names[2]),
    ]
