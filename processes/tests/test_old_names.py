"""What an older portal left behind still works: the admin's links to runs and activity."""

from __future__ import annotations

import pytest


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
