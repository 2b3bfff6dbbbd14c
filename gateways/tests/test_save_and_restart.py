"""Save and restart with a real worker, keeper and server: the running gateway comes back on its new
port, the old one is gone, and the Activity and the history say who did it."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from conftest import wait_until
from gateways.models import Gateway
from gateways.tests.process_helpers import free_port, server_processes, start_and_wait, wait_state
from portal import tokens
from portal.models import AuditEntry
from processes.models import Activity

pytestmark = [pytest.mark.worker]


def test_a_patch_with_restart_brings_the_gateway_back_on_its_new_port(pygate, administrator):
    gateway = start_and_wait(pygate, administrator)
    assert gateway.state == "running", gateway.last_error
    old_pid, old_port, new_port = gateway.pid, gateway.port, free_port()
    client = Client(headers={"Authorization": f"Bearer {tokens.create(administrator, 'deploy')[1]}"})
    response = client.patch(f"/api/gateways/{gateway.name}/?restart=1", json.dumps({"port": new_port}),
                            content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["restart"] == {"requested": True}
    gateway = wait_state(Gateway.objects.get(pk=gateway.pk), {"running"}, timeout=30)
    assert gateway.port == new_port and gateway.pid != old_pid
    wait_until(lambda: server_processes(new_port), timeout=10, message="no server on the new port")
    wait_until(lambda: not server_processes(old_port), timeout=10, message="the server on the old port is left")
    assert Activity.objects.filter(name=gateway.name, message="Restart requested", trigger="api:ada").exists()
    change = AuditEntry.objects.get(action="changed", object_name=gateway.name)
    assert change.actor_name == "api:ada" and change.changes["port"] == {"before": old_port, "after": new_port}
