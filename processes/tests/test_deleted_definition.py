"""A deleted definition's runs and activity stay, named by the name they keep."""

from __future__ import annotations

import datetime as dt

import pytest

from gateways.tests.factories import make_gateway
from processes import services, sync
from processes.models import Activity, Run

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2024, 5, 31, 12, 0, tzinfo=dt.UTC)


def test_deleting_a_definition_keeps_its_rows_by_name_and_a_new_one_of_that_name_starts_clean(
        administrator, role_client) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway()
    sync.record(gateway, message="Start requested", trigger="ada", host="alpha", at=T0)
    Run.objects.create(kind="gateway", object_id=gateway.pk, name="PyGate", trigger="ada", host="alpha",
                       started_at=T0)
    services.delete_definition(gateway, administrator)
    client = role_client("viewer")

    row = Activity.objects.get(message="Start requested")
    assert (row.kind, row.object_id, row.name) == ("gateway", None, "PyGate")
    assert Run.objects.get().object_id is None
    html = client.get("/activity/").content.decode()
    assert 'PyGate <span class="muted">(deleted)</span>' in html
    assert "Start requested" in client.get("/activity/?gateway=PyGate").content.decode()

    again = make_gateway()
    assert not Activity.objects.of(again).exists() and not Run.objects.of(again).exists()
    assert "Start requested" not in client.get("/gateways/PyGate/activity/").content.decode()
