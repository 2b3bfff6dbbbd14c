"""manage.py gateway edit: the options given change, the rest is kept; the form's messages; --restart."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from gateways.tests.test_api import REMOTE, VERIFIER
from portal.models import AuditEntry
from portal.roles import OPERATOR
from processes.models import Activity

pytestmark = pytest.mark.django_db
NO_BROKER = "redis+socket:///nonexistent/redis.sock"


def run(*args: str) -> str:
    out = StringIO()
    call_command("gateway", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def running_gateway() -> Gateway:
    return make_gateway(server=REMOTE, port=55051, state="running", pid=4242, allow_unauthenticated_network=True)


def test_edit_changes_only_the_options_given():
    make_gateway(port=55050, python_options="-X dev", use_passphrase=True, passphrase_verifier=VERIFIER,
                 allow_no_passphrase=False)
    assert run("edit", "pygate", "--port", "55052", "--restart-policy", "never") == "Saved gateway PyGate.\n"
    gateway = Gateway.objects.get()
    assert (gateway.port, gateway.restart_policy, gateway.python_options) == (55052, "never", "-X dev")
    assert gateway.passphrase_verifier == VERIFIER
    entry = AuditEntry.objects.get()
    assert entry.changes == {"port": {"before": 55050, "after": 55052},
                             "restart_policy": {"before": "on-failure", "after": "never"}}
    assert entry.actor_name.startswith("cli:")


def test_edit_gives_the_forms_messages_named_by_option():
    make_gateway(port=55053)
    make_gateway(name="Other", port=55054)
    with pytest.raises(CommandError) as error:
        run("edit", "PyGate", "--port", "55054", "--options", "-c print(1)")
    message = str(error.value)
    assert message.startswith("The gateway was not saved:")
    assert "--port: Port 55054 on 127.0.0.1 is already used by gateway Other" in message
    assert "--options: " in message
    assert Gateway.objects.get(name="PyGate").port == 55053


def test_a_passphrase_is_read_from_a_file_and_removed_only_with_the_acknowledgement(tmp_path):
    make_gateway(port=55055)
    secret = tmp_path / "pass"
    secret.write_text("a long enough passphrase\n")
    output = run("edit", "PyGate", "--passphrase-file", str(secret))
    assert "a long enough passphrase" not in output
    assert Gateway.objects.get().use_passphrase and Gateway.objects.get().passphrase_verifier
    with pytest.raises(CommandError, match="--allow-no-passphrase: "):
        run("edit", "PyGate", "--no-passphrase", "--no-allow-no-passphrase")
    run("edit", "PyGate", "--no-passphrase", "--allow-no-passphrase")
    gateway = Gateway.objects.get()
    assert not gateway.use_passphrase and not gateway.passphrase_verifier


def test_a_running_gateway_is_changed_only_with_restart(redis_service):
    running_gateway()
    with pytest.raises(CommandError) as refused:
        run("edit", "PyGate", "--port", "55056")
    assert str(refused.value).startswith("PyGate is running: stop PyGate first, then change port.")
    assert str(refused.value).endswith("Or add --restart: the change is saved and PyGate restarted with it.")
    assert Gateway.objects.get().port == 55051
    output = run("edit", "PyGate", "--port", "55056", "--restart")
    assert output == ("Gateway PyGate was saved, and its restart was requested: it runs the new definition once "
                      "it is running again.\n")
    gateway = Gateway.objects.get()
    assert gateway.port == 55056 and gateway.requested == "restart"
    assert Activity.objects.of(gateway).get().trigger.startswith("cli:")


@override_settings(REDIS_URL=NO_BROKER)
def test_a_restart_not_sent_exits_1_saying_the_change_is_saved():
    running_gateway()
    with pytest.raises(CommandError) as error:
        run("edit", "PyGate", "--port", "55057", "--restart")
    assert str(error.value).startswith("Gateway PyGate was saved, but not restarted: the restart of PyGate was not sent")
    assert Gateway.objects.get().port == 55057


def test_an_operator_may_not_edit(make_user):
    make_gateway(port=55058)
    make_user("otto", OPERATOR)
    with pytest.raises(CommandError, match="Only an Administrator may edit gateway definitions"):
        run("--user", "otto", "edit", "PyGate", "--port", "55059")
    assert Gateway.objects.get().port == 55058
