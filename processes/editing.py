"""Save a definition, and restart it when asked: the one path the pages, the CLI and the API share.

A running definition's runtime fields (``adapter.runtime_fields``) may change only while it is
stopped (``control.check_definition_change``): the running process would not follow them. "Save
and restart" lifts that refusal for one save and sends a restart at once, so the change takes
effect without a Stop, an Edit and a Start by hand. The restart is the control service's
(``control.request``): the same role check, the same Activity row, the same task.

The order is the roles first (who may not restart is refused before anything is saved), then the
save (``processes.services.save_definition``: the permission check and history), then the
restart. A restart that cannot be sent (the broker does not answer) leaves the change saved: the
outcome says so, and that the process still runs its former definition until it is restarted.

"Save and reload" is not offered: a graceful reload (gunicorn's and granian's SIGHUP, uvicorn's
with several workers) replaces the workers under the same command line and environment, so none
of a definition's runtime fields would reach the new workers (see webapps/runtime/engines.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.utils.text import capfirst

from portal import roles
from portal.process.states import RESTART, START
from processes import control, services
from processes.adapters import adapter_of

# What a save may be followed by: "" (nothing) or a restart.
THEN = ("", RESTART)


@dataclass
class Saved:
    """What a save did: the definition, whether a restart was sent, and why not when asked for."""

    obj: Any
    created: bool
    restart_asked: bool = False
    restarted: bool = False  # a restart request was sent (its outcome shows on the Activity page)
    not_restarted: str = ""  # asked for but not sent: why, and what to do
    warnings: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """One sentence for the pages and the CLI."""
        kind = adapter_of(self.obj)
        name = f"{capfirst(kind.label)} {self.obj.name}"
        if self.created:
            return f"{name} was created."
        if self.restarted:
            return (f"{name} was saved, and its restart was requested: it runs the new definition once it is "
                    "running again.")
        if self.not_restarted:
            return f"{name} was saved, but not restarted: {self.not_restarted}"
        return f"{name} was saved."


def form_data_of(form_class: type, instance: Any) -> dict[str, Any]:
    """The definition as its form posts it: what an edit of a few fields (the CLI's, the API's PATCH)
    starts from, so that the fields not given keep their values. A secret is posted empty, which
    its form reads as "keep the current one"."""
    form = form_class(instance=instance)
    if hasattr(form, "as_data"):
        return form.as_data()
    data: dict[str, Any] = {}
    for name, form_field in form.fields.items():
        value = form[name].value()
        if isinstance(form_field, forms.BooleanField):
            data[name] = "on" if value else ""
        else:
            data[name] = "" if value is None else str(value)
    return data


def is_running(obj: Any) -> bool:
    """Running or on its way to be: a save of its runtime fields then needs a restart."""
    return bool(obj.pk and (obj.is_active or obj.intent == START))


def may_restart(user: Any) -> bool:
    return roles.can_operate(user)


def restart_offered(user: Any, obj: Any) -> bool:
    """Whether the edit page shows "Save and restart": to those who may restart, while it runs."""
    return bool(obj is not None and may_restart(user) and is_running(obj))


def require_restart_role(user: Any, obj: Any) -> None:
    if not may_restart(user):
        raise PermissionDenied(
            f"Only an Operator or an Administrator may restart {adapter_of(obj).label_plural}; nothing was saved. "
            "Save without a restart while it is stopped, or ask an administrator for that role."
        )


def _require_same_host(current: Any, changed: Any) -> None:
    """A restart is sent to the host where the definition will run, whose worker stops what runs
    there: a change that moves it to another host (a gateway's server) would leave the running
    process where it is, out of the portal's hands."""
    kind = adapter_of(current)
    here, there = current.run_host or kind.host_of(current), kind.host_of(changed)
    if here != there:
        raise control.ControlError(
            f"{current.name} runs on host {here}, and the change moves it to host {there}: a restart cannot "
            f"move it. Stop {current.name}, save the change, then start it."
        )


def save(form: Any, user: Any, *, then: str = "", actor: str | None = None,
         channel: str = "web") -> Saved:
    """Save a valid ``form`` through processes.services and, with ``then="restart"`` and the
    definition running, restart it. Raises PermissionDenied (the roles) and ControlError (a change
    the running process would not follow, without a restart) before anything is saved."""
    if then not in THEN:
        raise control.ControlError(f"Unknown step after a save: {then!r}; use restart, or nothing.")
    creating = form.instance.pk is None
    current = None if creating else type(form.instance).objects.get(pk=form.instance.pk)
    restarting = bool(then == RESTART and current is not None and is_running(current))
    if restarting:
        require_restart_role(user, form.instance)
        _require_same_host(current, form.instance)
    obj = services.save_definition(form, user, actor, restarting=restarting)
    saved = Saved(obj=obj, created=creating, restart_asked=then == RESTART, warnings=list(form.warnings))
    if then == RESTART and not creating and not restarting:
        saved.not_restarted = (f"{obj.name} is not running, so there was nothing to restart: the change applies at "
                               "its next start.")
        return saved
    if restarting:
        try:
            control.request(obj, RESTART, user, channel=channel)
        except (control.ControlError, PermissionDenied) as e:
            reason = str(e)
            if reason.startswith("The "):  # read after a colon: "saved, but not restarted: the restart of …"
                reason = "t" + reason[1:]
            saved.not_restarted = (f"{reason} {obj.name} still runs its former definition: restart it to apply "
                                   "the change.")
        else:
            saved.restarted = True
    return saved
