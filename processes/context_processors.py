"""The names templates compare and link with, from the one place each is spelled.

``STATE.RUNNING`` is portal/process/states.py's ``RUNNING`` and ``ACTION.STOP`` is
processes/control.py's ``STOP``, so a template writes ``{% if obj.state == STATE.RUNNING %}``
and ``{% url 'gateways:control' gateway.name ACTION.STOP %}``, never the word itself
(portal/tests/test_layers.py fails on a state or an action spelled in a template).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal.process.states import State
from processes import control

STATE: dict[str, str] = {state.name: state.value for state in State}
ACTION: dict[str, str] = {action.upper(): action for action in control.ACTIONS}


def names(request: HttpRequest) -> dict[str, Any]:
    """The names, and the kinds (``KINDS``: their adapters, in the order their apps are installed)
    for the navigation bar: a kind's list is linked from every page without a line of its own."""
    from processes.kinds import all_adapters

    return {"STATE": STATE, "ACTION": ACTION, "KINDS": all_adapters()}
