"""A merge with restart: a running gateway is stopped, changed and started again, with a real
worker, a real keeper and a real server; the Activity records it."""

from __future__ import annotations

import pytest

from conftest import wait_until
from gateways.models import Gateway
from gateways.tests.process_helpers import free_port, server_processes, start_and_wait, wait_state
from portal.cpf import merge
from portal.models import AuditEntry
from processes.models import Activity

pytestmark = [pytest.mark.worker]


def test_a_merge_with_restart_stops_changes_and_starts_a_running_gateway(pygate, administrator):
    gateway = start_and_wait(pygate, administrator)
    old_pid, new_port = gateway.pid, free_port()
    text = f"[Actions]\nModifyGateway:Name={gateway.name},Port={new_port},PythonOptions=-X dev\n"

    refused = merge.merge(text, administrator, apply=True)
    assert "is running: stop it first" in refused.problems[0].message
    assert Gateway.objects.get(pk=gateway.pk).port == gateway.port

    result = merge.merge(text, administrator, apply=True, restart=True)
    assert result.problems == [] and result.restarted == [gateway.name]
    gateway = wait_state(Gateway.objects.get(pk=gateway.pk), {"running"}, timeout=20)
    assert (gateway.port, gateway.python_options) == (new_port, "-X dev")
    wait_until(lambda: server_processes(new_port), timeout=10, message="no server on the new port")
    assert gateway.pid != old_pid
    triggers = list(Activity.objects.filter(name=gateway.name, message__in=["Stop requested", "Start requested"])
                    .order_by("at", "id").values_list("message", "trigger"))
    assert triggers[-2:] == [("Stop requested", "cpf merge:ada"), ("Start requested", "cpf merge:ada")]
    change = AuditEntry.objects.get(action="changed", object_name=gateway.name)
    assert change.actor_name == "ada (cpf merge)" and change.changes["port"]["after"] == new_port


def test_a_merge_with_restart_and_a_bad_line_stops_nothing(pygate, administrator):
    gateway = start_and_wait(pygate, administrator)
    text = f"[Actions]\nModifyGateway:Name={gateway.name},StopTimeout=9\nDeleteGateway:Name={gateway.name}x\n" \
           f"CreateGateway:Name=Bad,AllowNoPassphrase=1,Port=0\n"
    result = merge.merge(text, administrator, apply=True, restart=True)
    assert result.problems and not result.applied
    assert Gateway.objects.get(pk=gateway.pk).state == "running"
    assert not Activity.objects.filter(name=gateway.name, message="Stop requested").exists()
