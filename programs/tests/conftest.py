"""Fixtures of the program tests: definitions saved through the form, and every keeper a test started
stopped at its end."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import wait_until
from portal import paths
from portal.cli import CliOperator
from portal.process import keeper
from processes import services
from programs.forms import ProgramForm
from programs.models import Program


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def form_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "worker", "command": "/bin/sleep 300", "restart_policy": "on-failure",
                            "stop_signal": "TERM", "init_timeout": "1", "stop_timeout": "10"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def make_program(**overrides: Any) -> Program:
    """A definition saved as the CLI and the API save one: through the form and the service."""
    form = ProgramForm(form_data(**overrides))
    assert form.is_valid(), form.errors
    return services.save_definition(form, CliOperator(), actor="test")


def wait_state(program: Program, states: set[str], timeout: float = 15.0) -> Program:
    def settled() -> bool:
        program.refresh_from_db()
        return program.state in states and not program.intent

    wait_until(settled, timeout=timeout,
               message=f"{program.name} did not reach {states} (it is {program.state}: {program.last_error})")
    return program


@pytest.fixture
def program_processes(celery_worker, transactional_db) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A real worker, and every program a test starts stopped at its end."""
    yield celery_worker
    root = paths.RUN_DIR / "programs"
    for run_dir in root.iterdir() if root.exists() else []:
        if keeper.keeper_alive(run_dir):
            keeper.request_stop(run_dir, timeout=15, trigger="test")
