"""Small builders for gateway definitions in tests."""

from __future__ import annotations

from typing import Any

from gateways.models import Gateway


def form_data(**overrides: Any) -> dict[str, Any]:
    """What the create form posts for a valid definition, with overrides."""
    data: dict[str, Any] = {
        "type": "python",
        "name": "PyGate",
        "server": "127.0.0.1",
        "port": "55001",
        "python_executable": "",
        "python_options": "",
        "log_file": "",
        "connection_timeout": "5",
        "init_timeout": "5",
        "restart_policy": "on-failure",
        "stop_timeout": "5",
    }
    data.update(overrides)
    return data


def make_gateway(**fields: Any) -> Gateway:
    values: dict[str, Any] = {"name": "PyGate", "server": "127.0.0.1", "port": 55001}
    values.update(fields)
    return Gateway.objects.create(**values)
