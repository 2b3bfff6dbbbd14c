import re

import pytest

from conftest import ROLES
from gateways.tests.factories import make_gateway

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_the_login_page(client):
    response = client.get("/gateways/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/gateways/")


@pytest.mark.parametrize("role", ROLES[1:])
def test_every_role_reads_the_list(role_client, role):
    make_gateway()
    response = role_client(role).get("/gateways/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "PyGate" in html and "55001" in html and "127.0.0.1" in html
    assert "Python" in html and "Stopped" in html
    assert "Activity" in html


def test_a_user_without_a_role_is_refused(client, make_user):
    client.force_login(make_user("nobody", None))
    response = client.get("/gateways/")
    assert response.status_code == 403
    assert "no role" in response.content.decode()


def test_a_viewer_sees_no_edit_delete_or_create(role_client):
    make_gateway()
    html = role_client("viewer").get("/gateways/").content.decode()
    assert "/gateways/PyGate/edit/" not in html
    assert "/gateways/PyGate/delete/" not in html
    assert "/gateways/new/" not in html
    assert "Start</button>" not in html


def test_an_operator_sees_start_but_not_edit(role_client):
    make_gateway()
    html = role_client("operator").get("/gateways/").content.decode()
    assert "Start</button>" in html
    assert "/gateways/PyGate/edit/" not in html


def test_an_administrator_sees_edit_and_delete(role_client):
    make_gateway()
    html = role_client("administrator").get("/gateways/").content.decode()
    assert "/gateways/PyGate/edit/" in html
    assert "/gateways/PyGate/delete/" in html
    assert "/gateways/new/" in html


def test_the_empty_list_invites_an_administrator_to_create_one(role_client):
    html = role_client("administrator").get("/gateways/").content.decode()
    assert "No gateways yet" in html
    assert "Create your first gateway" in html


def test_names_sort_regardless_of_case(role_client):
    make_gateway(name="beta", port=1)
    make_gateway(name="Alpha", port=2)
    make_gateway(name="charlie", port=3)
    html = role_client("viewer").get("/gateways/").content.decode()
    assert html.index("Alpha") < html.index("beta") < html.index("charlie")


def test_the_list_is_paged_a_hundred_at_a_time(role_client):
    from gateways.models import Gateway

    Gateway.objects.bulk_create(Gateway(name=f"gw{i:04d}", port=10000 + i) for i in range(150))
    client = role_client("viewer")
    first = client.get("/gateways/").content.decode()
    assert "gw0000" in first and "gw0099" in first and "gw0100" not in first
    assert "Gateways 1–100 of 150" in first
    second = client.get("/gateways/?page=2").content.decode()
    assert "gw0100" in second and "gw0149" in second and "gw0000" not in second


def test_the_list_finds_by_name_server_and_state(role_client):
    make_gateway(name="Alpha", port=1, server="10.0.0.1", state="running")
    make_gateway(name="Beta", port=2)
    client = role_client("viewer")
    assert "Beta" not in client.get("/gateways/?q=alp").content.decode()
    assert "Alpha" in client.get("/gateways/?q=10.0.0").content.decode()
    html = client.get("/gateways/?state=running").content.decode()
    assert "Alpha" in html and ">Beta<" not in html
    assert "No gateway matches" in client.get("/gateways/?q=zzz").content.decode()


@pytest.mark.parametrize(("states", "every"), [(["stopped", "fatal"], "3s"), (["stopped", "running"], "1s"),
                                                (["backoff"], "1s")])
def test_the_rows_refresh_every_second_while_a_process_is_up(role_client, states, every):
    """A kill -9 shows on the list within about a second, not after up to 3 s of a dead pid."""
    for number, state in enumerate(states):
        make_gateway(name=f"G{number}", port=25001 + number, state=state)
    viewer = role_client("viewer")
    for url in ("/gateways/", "/gateways/?part=rows"):
        html = viewer.get(url).content.decode()
        assert re.search(r'<tbody id="gateway-rows" [^>]*hx-trigger="every ' + every + '" data-poll="visible unannounced"', html), html[:2000]
