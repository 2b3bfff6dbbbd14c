"""Save and restart on the edit page (processes.editing, shared by every kind): shown to those who
may restart while it runs, saves then restarts, says precisely when the restart was not sent; and
the top of a refused form says the actual problem, not "correct the field marked below"."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client, override_settings

from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway
from gateways.tests.test_api import REMOTE
from portal.models import AuditEntry
from processes.models import Activity

pytestmark = pytest.mark.django_db
NO_BROKER = "redis+socket:///nonexistent/redis.sock"
BUTTON = '<button type="submit" name="then" value="restart">Save and restart</button>'


def running_gateway(**fields: object) -> Gateway:
    """A running gateway on a host no test worker serves: a restart is recorded and sent, nothing runs."""
    return make_gateway(server=REMOTE, port=55041, state="running", pid=4242, allow_unauthenticated_network=True,
                        **fields)


def post(client: Client, **changes: str):  # type: ignore[no-untyped-def]
    data = form_data(server=REMOTE, port="55041", allow_unauthenticated_network="on")
    data.update(changes)
    return client.post("/gateways/PyGate/edit/", data, follow=True)


def test_the_button_is_offered_only_while_it_runs(admin_client_):
    gateway = running_gateway()
    assert BUTTON in admin_client_.get("/gateways/PyGate/edit/").content.decode()
    Gateway.objects.filter(pk=gateway.pk).update(state="stopped", pid=None)
    assert BUTTON not in admin_client_.get("/gateways/PyGate/edit/").content.decode()


def test_save_and_restart_saves_and_requests_the_restart(admin_client_, redis_service):
    running_gateway()
    response = post(admin_client_, port="55042", then="restart")
    html = response.content.decode()
    assert "Gateway PyGate was saved, and its restart was requested" in html
    gateway = Gateway.objects.get()
    assert gateway.port == 55042 and gateway.requested == "restart" and gateway.intent == "start"
    request = Activity.objects.of(gateway).get()
    assert request.message == "Restart requested" and request.trigger == "ada"
    entry = AuditEntry.objects.get()
    assert entry.changes == {"port": {"before": 55041, "after": 55042}} and entry.actor_name == "ada"


def test_a_plain_save_of_a_running_gateway_says_the_problem_and_the_button(admin_client_):
    running_gateway()
    html = post(admin_client_, port="55042").content.decode()
    assert ("PyGate is running: stop PyGate first, then change port. The running gateway would not follow a "
            "changed definition. Or press Save and restart: the change is saved and PyGate restarted with it.") in html
    # No field carries an error: the page does not send the reader looking for one.
    assert "marked below" not in html
    assert Gateway.objects.get().port == 55041


@override_settings(REDIS_URL=NO_BROKER)
def test_a_restart_that_cannot_be_sent_is_said_and_the_change_kept(admin_client_):
    running_gateway()
    html = post(admin_client_, port="55043", then="restart").content.decode()
    assert "Gateway PyGate was saved, but not restarted: the restart of PyGate was not sent: the task broker" in html
    assert "PyGate still runs its former definition: restart it to apply the change." in html
    assert Gateway.objects.get().port == 55043


def test_who_may_edit_but_not_restart_sees_no_button_and_is_refused_before_saving(make_user):
    user = make_user("edith", None)
    for codename in ("view_gateway", "add_gateway", "change_gateway", "delete_gateway"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    running_gateway()
    assert BUTTON not in client.get("/gateways/PyGate/edit/").content.decode()
    response = post(client, port="55044", then="restart")
    # Said on the form, with what was typed still in it.
    html = response.content.decode()
    assert response.status_code == 200
    assert "Only an Operator or an Administrator may restart gateways; nothing was saved." in html
    assert 'name="port" value="55044"' in html
    assert "marked below" not in html
    assert Gateway.objects.get().port == 55041


def test_an_operator_cannot_use_it_to_edit(role_client):
    running_gateway()
    assert post(role_client("operator"), port="55045", then="restart").status_code == 403
    assert Gateway.objects.get().port == 55041


def test_an_error_of_the_type_is_marked_where_the_top_says(admin_client_):
    html = admin_client_.post("/gateways/new/", form_data(type="dotnet")).content.decode()
    assert "The definition was not saved: correct the field marked below." in html
    assert '<p class="field-error" role="alert">Select a valid choice. dotnet is not one of the available choices.</p>' in html
