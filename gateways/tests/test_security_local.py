"""A gateway without a passphrase lets every local user run code through it: only when ticked.

127.0.0.1 is open to every user of the host, so a passphrase-less gateway on loopback runs
any local user's code as the user it runs as. A new definition without a passphrase needs
"Allow any local user to run code through it (no passphrase)" ticked, in the form, the
command, the admin and merge files; a row without it (changed through a path that skipped
the form) is refused before each start; the choice is in the history, the list and detail
pages mark the gateway, and each start says in its activity who can run code as whom.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gateways.forms import GatewayForm
from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway
from gateways.tests.process_helpers import server_processes, start_and_wait
from portal.cli import CliOperator
from portal.cpf import merge
from portal.models import AuditEntry
from portal.process.accounts import portal_user
from processes import tasks
from processes.accounts import who
from processes.models import Activity

pytestmark = pytest.mark.django_db

BADGE = "no passphrase: any local user can run code"
BOX = "Allow any local user to run code through it (no passphrase)"


def refusal(runs_as: str, reach: str = "any local user") -> str:
    return (f"Without a passphrase {reach} can run code as {runs_as} through this gateway: tick “Use passphrase” "
            f"and set one, or tick “{BOX}” to accept that.")


def refused_for_no_passphrase(gateway: Gateway) -> bool:
    failure = tasks.preflight(gateway)
    return failure is not None and failure.code == "no-passphrase"


def errors_for(**overrides: str | None) -> dict[str, str]:
    form = GatewayForm(form_data(allow_no_passphrase=None, **overrides))
    form.is_valid()
    return {field: " ".join(errors) for field, errors in form.errors.items()}


# The form (and so the pages and the admin) ---------------------------------------------


@pytest.mark.parametrize("server", ["127.0.0.1", "::1", "localhost"])
def test_a_loopback_gateway_without_a_passphrase_is_refused_unless_acknowledged(server):
    assert errors_for(server=server) == {"allow_no_passphrase": refusal(who("gateway", None, ""))}


def test_the_refusal_says_who_it_would_run_as():
    from processes.accounts import cannot_switch

    if cannot_switch():  # the portal's own user, by name
        expected = {"": f"the portal's user ({portal_user()})", "nobody": f"the portal's user ({portal_user()})"}
    else:
        expected = {"": "its own user", "nobody": "nobody", "root": "root"}
    for run_as, runs_as in expected.items():
        # root with its own leave ticked: without it, Run as has an error of its own first.
        leave = {"allow_root": "on"} if run_as == "root" else {}
        assert errors_for(run_as=run_as, **leave).get("allow_no_passphrase") == refusal(runs_as)


def test_beyond_loopback_it_also_says_who_can_reach_the_port():
    errors = errors_for(server="0.0.0.0", port="55001", allow_unauthenticated_network="on")
    assert errors == {"allow_no_passphrase": refusal(
        who("gateway", None, ""), "any local user (and anyone who can reach 0.0.0.0:55001)")}


def test_beyond_loopback_both_acknowledgements_are_needed():
    # Each says its own risk: every local user, and the network.
    errors = errors_for(server="0.0.0.0")
    assert set(errors) == {"allow_no_passphrase", "use_passphrase"}
    assert "no passphrase is set: anyone who can reach the port" in errors["use_passphrase"]
    form = GatewayForm(form_data(server="0.0.0.0", allow_unauthenticated_network="on"))
    assert form.is_valid(), form.errors


def test_ticked_it_is_accepted_and_saved():
    form = GatewayForm(form_data())
    assert form.is_valid(), form.errors
    gateway = form.save()
    assert gateway.allow_no_passphrase and not gateway.use_passphrase


def test_a_passphrase_needs_no_acknowledgement_and_clears_it():
    assert errors_for(use_passphrase="on", passphrase="long enough phrase") == {}
    form = GatewayForm(form_data(use_passphrase="on", passphrase="long enough phrase"))
    assert form.is_valid(), form.errors
    assert form.save().allow_no_passphrase is False  # removing the passphrase later asks again


def test_removing_the_passphrase_later_asks_again(admin_client_):
    admin_client_.post("/gateways/new/", form_data(use_passphrase="on", passphrase="long enough phrase"))
    response = admin_client_.post("/gateways/PyGate/edit/", form_data(allow_no_passphrase=None))
    assert response.status_code == 200
    assert refusal(who("gateway", Gateway.objects.get(), "")) in response.content.decode()
    assert Gateway.objects.get().use_passphrase


def test_the_create_page_refuses_it_and_shows_the_box(admin_client_):
    response = admin_client_.post("/gateways/new/", form_data(allow_no_passphrase=None))
    html = response.content.decode()
    assert response.status_code == 200 and not Gateway.objects.exists()
    assert 'name="allow_no_passphrase"' in html and BOX in html
    assert refusal(who("gateway", None, "")) in html


def test_the_admin_refuses_it_too(administrator):
    from django.test import Client

    administrator.is_staff = administrator.is_superuser = True
    administrator.save()
    client = Client()
    client.force_login(administrator)
    data = {**form_data(allow_no_passphrase=None), "python_executable": "", "_save": "Save"}
    response = client.post("/admin/gateways/gateway/add/", data)
    assert response.status_code == 200 and not Gateway.objects.exists()
    assert refusal(who("gateway", None, "")) in response.content.decode()
    assert client.post("/admin/gateways/gateway/add/", {**data, "allow_no_passphrase": "on"}).status_code == 302
    assert Gateway.objects.get().allow_no_passphrase


# The command and merge files -------------------------------------------------------------


def test_the_command_refuses_it_with_the_forms_message_and_names_its_option():
    with pytest.raises(CommandError) as error:
        call_command("gateway", "create", "PyGate", "--port", "55001", stdout=StringIO())
    assert f"--allow-no-passphrase: {refusal(who('gateway', None, ''))}" in str(error.value)
    assert not Gateway.objects.exists()


def test_the_command_creates_it_with_the_option_and_shows_it():
    call_command("gateway", "create", "PyGate", "--port", "55001", "--allow-no-passphrase", stdout=StringIO())
    out = StringIO()
    call_command("gateway", "show", "PyGate", "--json", stdout=out)
    shown = json.loads(out.getvalue())
    assert shown["use_passphrase"] is False and shown["allow_no_passphrase"] is True


def test_a_merge_refuses_it_on_its_key():
    result = merge.merge("[Actions]\nCreateGateway:Name=PyGate,Port=55001\n", CliOperator(), apply=True)
    assert [(p.line, p.key, p.message) for p in result.problems] == [
        (2, "AllowNoPassphrase", refusal(who("gateway", None, "")))]
    assert not Gateway.objects.exists()


def test_a_merge_creates_it_with_the_key_and_exports_it():
    result = merge.merge("[Actions]\nCreateGateway:Name=PyGate,Port=55001,AllowNoPassphrase=1\n", CliOperator(),
                         apply=True)
    assert not result.problems and Gateway.objects.get().allow_no_passphrase
    from gateways.cpf import GatewayAdapter

    assert GatewayAdapter().shown(Gateway.objects.get())["AllowNoPassphrase"] == "1"


# History and pages -------------------------------------------------------------------------


def test_the_acknowledgement_is_recorded_in_the_history(admin_client_):
    admin_client_.post("/gateways/new/", form_data(use_passphrase="on", passphrase="long enough phrase"))
    response = admin_client_.post("/gateways/PyGate/edit/", form_data())
    assert response.status_code == 302
    entry = AuditEntry.objects.filter(action="changed").get()
    assert entry.changes["allow_no_passphrase"] == {"before": False, "after": True}
    assert entry.changes["use_passphrase"] == {"before": True, "after": False}
    history = admin_client_.get("/gateways/PyGate/").content.decode()
    assert "Allow any local user to run code through it (no passphrase)" in history[history.index('id="history"'):]


def test_the_list_and_the_detail_page_mark_a_gateway_without_a_passphrase(role_client):
    make_gateway(name="Local", port=55011)
    make_gateway(name="Guarded", port=55012, use_passphrase=True, passphrase_verifier="x")
    make_gateway(name="Open", server="0.0.0.0", port=55013, allow_unauthenticated_network=True)
    viewer = role_client("viewer")
    listing = viewer.get("/gateways/").content.decode()
    assert listing.count(BADGE) == 1  # Open has the stronger badge of its own
    assert listing.index(">Guarded</a>") < listing.index(BADGE) < listing.index(">Open</a>")
    detail = viewer.get("/gateways/Local/").content.decode()
    assert BADGE in detail
    assert "Not required: any local user can run code through it as" in detail
    assert BADGE not in viewer.get("/gateways/Guarded/").content.decode()
    assert "open to the network without a passphrase" in viewer.get("/gateways/Open/").content.decode()


def test_a_row_without_the_acknowledgement_says_its_start_is_refused(role_client):
    make_gateway(allow_no_passphrase=False)
    detail = role_client("viewer").get("/gateways/PyGate/").content.decode()
    assert "Not required and not allowed: its start is refused" in detail


# Before each start -----------------------------------------------------------------------


def test_a_row_without_the_acknowledgement_is_refused_before_start():
    gateway = make_gateway(allow_no_passphrase=False)  # written straight into the table
    failure = tasks.preflight(gateway)
    assert failure is not None and failure.code == "no-passphrase"
    assert failure.message == refusal(who("gateway", gateway))
    assert not refused_for_no_passphrase(make_gateway(name="Acknowledged", port=55002))
    assert not refused_for_no_passphrase(make_gateway(name="Guarded", port=55003, use_passphrase=True,
                                                      passphrase_verifier="x", allow_no_passphrase=False))


def test_a_row_without_the_acknowledgement_never_starts(pygate, operator):
    Gateway.objects.filter(pk=pygate.pk).update(allow_no_passphrase=False)
    gateway = start_and_wait(pygate, operator)
    assert gateway.state == "stopped"
    assert gateway.last_error.startswith("Start refused: Without a passphrase any local user can run code as ")
    assert server_processes(gateway.port) == []


def test_each_start_says_who_can_run_code_as_whom(pygate, operator):
    gateway = start_and_wait(pygate, operator)
    assert gateway.state == "running", gateway.last_error
    warning = Activity.objects.of(gateway).filter(level="warning", message__contains="without a passphrase").get()
    assert warning.message == (f"PyGate starts on 127.0.0.1:{gateway.port} without a passphrase (allowed on its "
                               f"definition): any local user can run code as {who('gateway', gateway)} through it")
    assert warning.trigger == operator.username


# Definitions saved before the rule -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_acknowledges_existing_definitions_without_a_passphrase():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("gateways", "0007_gateway_allow_root_gateway_run_as")]
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old = MigrationExecutor(connection).loader.project_state(before).apps.get_model("gateways", "Gateway")
        old.objects.create(name="Open", port=55001)
        old.objects.create(name="Guarded", port=55002, use_passphrase=True, passphrase_verifier="x")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        flags = dict(Gateway.objects.values_list("name", "allow_no_passphrase"))
        assert flags == {"Open": True, "Guarded": False}
        assert not refused_for_no_passphrase(Gateway.objects.get(name="Open"))
    finally:
        call_command("migrate", verbosity=0)
