"""What an older portal left behind still works: tasks queued under the gateway task names,
and the admin's links to runs and activity."""

from __future__ import annotations

import pytest
from django.conf import settings

from gateways.tests.factories import make_gateway
from gateways.tests.process_helpers import free_port, server_processes, wait_state
from portal.celery import app
from portal.queues import host_queue
from processes.models import Activity


@pytest.mark.worker
def test_a_start_and_a_stop_queued_under_the_old_task_names_still_run(gateway_processes) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    gateway = make_gateway(port=port)
    queue = host_queue(settings.PORTAL_HOST_NAME)
    # As an older portal sent them: by name, the gateway's pk, a trigger, no request number.
    app.send_task("gateways.tasks.start_gateway", args=[gateway.pk, "ada"], queue=queue)
    gateway = wait_state(gateway, {"running"}, timeout=30)
    assert server_processes(port)
    app.send_task("gateways.tasks.stop_gateway", args=[gateway.pk, "ada"], queue=queue)
    gateway = wait_state(gateway, {"stopped"}, timeout=30)
    assert server_processes(port) == []
    trail = [s for s in Activity.objects.of(gateway).order_by("id").values_list("to_state", flat=True) if s]
    assert trail == ["starting", "running", "stopping", "stopped"]


@pytest.mark.django_db
@pytest.mark.parametrize("old, new", [
    ("/admin/gateways/run/?outcome__exact=running", "/admin/processes/run/?outcome__exact=running"),
    ("/admin/gateways/activity/", "/admin/processes/activity/"),
    ("/admin/gateways/activity/12/change/", "/admin/processes/activity/12/change/"),
])
def test_the_admin_links_to_runs_and_activity_of_before_lead_to_their_new_place(admin_client_, old, new) -> None:  # type: ignore[no-untyped-def]
    response = admin_client_.get(old)
    assert response.status_code == 302 and response["Location"] == new
    assert admin_client_.get("/admin/gateways/gateway/").status_code == 200  # the definitions stay where they were
