"""Small builders for gateway definitions in tests."""

from __future__ import annotations

from typing import Any

from gateways.models import Gateway


def form_data(**overrides: Any) -> dict[str, Any]:
    """What the create form posts for a valid definition, with overrides. Without a passphrase it
    needs the acknowledgement that any local user can run code through it: ticked here, so that
    a test about something else is not refused for it (``allow_no_passphrase=None`` leaves it out)."""
    data: dict[str, Any] = {
        "type": "python",
        "name": "PyGate",
        "server": "127.0.0.1",
        "port": "55001",
        "allow_no_passphrase": "on",
        "python_executable": "",
        "python_options": "",
        "log_file": "",
        "connection_timeout": "5",
        "init_timeout": "5",
        "restart_policy": "on-failure",
        "stop_timeout": "5",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def make_gateway(**fields: Any) -> Gateway:
    """A row straight into the table (no form): without a passphrase it has the acknowledgement
    the form asks for, unless ``allow_no_passphrase=False`` is given (a row from another path)."""
    values: dict[str, Any] = {"name": "PyGate", "server": "127.0.0.1", "port": 55001}
    values.update(fields)
    values.setdefault("allow_no_passphrase", not values.get("use_passphrase", False))
    return Gateway.objects.create(**values)
