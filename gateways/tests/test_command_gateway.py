"""manage.py gateway create|list|show|delete: the same validation as the form."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("gateway", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_then_list_and_show():
    assert "Created gateway PyGate on 127.0.0.1:55001." in run("create", "PyGate", "--port", "55001",
                                                                "--allow-no-passphrase")
    assert "PyGate" in run("list")
    data = json.loads(run("list", "--json"))
    assert data[0]["name"] == "PyGate" and data[0]["port"] == 55001
    shown = json.loads(run("show", "pygate", "--json"))
    assert shown["server"] == "127.0.0.1"


def test_list_and_show_give_the_state_as_the_pages_show_it():
    make_gateway(name="Up", port=25001, state="running")
    make_gateway(name="Coming", port=25002, intent="start", intent_at=timezone.now())  # asked, not yet acted on
    states = {g["name"]: g["state"] for g in json.loads(run("list", "--json"))}
    assert states == {"Up": "running", "Coming": "starting"}
    assert json.loads(run("show", "Coming", "--json"))["state"] == "starting"
    assert run("list").splitlines()[1].split()[-1] == "starting"


def test_a_bad_port_gives_the_forms_message():
    make_gateway()
    with pytest.raises(CommandError) as error:
        run("create", "Other", "--port", "55001")
    assert "--port: Port 55001 on 127.0.0.1 is already used by gateway PyGate" in str(error.value)
    assert Gateway.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_exit_code_is_non_zero_for_a_bad_port():
    import subprocess
    import sys

    from django.conf import settings

    from conftest import worker_env

    # The command opens the suite's test database, SQLite or PostgreSQL as configured.
    env = {**worker_env(), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "manage.py", "gateway", "create", "PyGate", "--port", "99999"],
        env=env, cwd=settings.BASE_DIR, capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "--port:" in result.stderr and "65535" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_passphrase_comes_from_a_file_and_is_not_stored(tmp_path):
    secret = tmp_path / "pass"
    secret.write_text("file-passphrase-1\n")
    run("create", "PyGate", "--port", "55001", "--passphrase-file", str(secret))
    gateway = Gateway.objects.get()
    assert gateway.use_passphrase and gateway.passphrase_verifier.startswith("pbkdf2_sha256$")
    assert "file-passphrase-1" not in json.dumps(json.loads(run("show", "PyGate", "--json")))


def test_a_missing_passphrase_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read the passphrase file"):
        run("create", "PyGate", "--port", "55001", "--passphrase-file", str(tmp_path / "none"))


def test_delete_removes_and_records():
    make_gateway()
    assert "Deleted gateway PyGate." in run("delete", "PyGate")
    assert not Gateway.objects.exists()
    assert AuditEntry.objects.get().actor_name.startswith("cli:")


def test_an_unknown_name_says_how_to_find_names():
    with pytest.raises(CommandError, match="gateway list"):
        run("show", "Nope")


@pytest.mark.parametrize("role,allowed", [("viewer", False), ("operator", False), ("administrator", True)])
def test_user_option_applies_that_users_role(role_client, role, allowed):
    role_client(role)  # creates user-<role>
    args = ("--user", f"user-{role}", "create", "PyGate", "--port", "55001", "--allow-no-passphrase")
    if allowed:
        assert "Created gateway PyGate on 127.0.0.1:55001." in run(*args)
        assert Gateway.objects.get().created_by.username == f"user-{role}"
    else:
        with pytest.raises(CommandError) as error:
            run(*args)
        assert str(error.value) == ("Only an Administrator may create gateway definitions; "
                                    "ask an administrator for that role.")
        assert not Gateway.objects.exists()
        make_gateway()  # an administrator's definition, for the read below
    # Reading is open to every role: this user sees the one definition.
    assert [g["name"] for g in json.loads(run("--user", f"user-{role}", "list", "--json"))] == ["PyGate"]


def test_an_unknown_user_is_refused():
    with pytest.raises(CommandError, match="no active portal user named 'ghost'"):
        run("--user", "ghost", "list")


def test_a_wildcard_without_passphrase_is_refused():
    with pytest.raises(CommandError, match="listens on every address of the host and no passphrase is set"):
        call_command("gateway", "create", "Wide", "--port", "55002", "--server", "0.0.0.0", stdout=StringIO())
    assert not Gateway.objects.exists()


def test_the_warning_for_an_allowed_wildcard_without_passphrase_goes_to_stderr():
    err = StringIO()
    call_command("gateway", "create", "Wide", "--port", "55002", "--server", "0.0.0.0", "--allow-no-passphrase",
                 "--allow-unauthenticated-network", stdout=StringIO(), stderr=err)
    assert "accepts connections from the network without a passphrase" in err.getvalue()


def test_show_names_the_interpreter_that_runs_a_gateway_with_none_given():
    import sys

    make_gateway(name="Blank", python_executable="")
    out = StringIO()
    call_command("gateway", "show", "Blank", "--json", stdout=out)
    shown = json.loads(out.getvalue())
    assert (shown["python_executable"], shown["interpreter"]) == ("", sys.executable)
