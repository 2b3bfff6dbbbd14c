"""Ports and server names: one message for an out-of-range port, and warnings that do not block a save."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from gateways.forms import GatewayForm, ephemeral_range, resolve
from gateways.models import Gateway
from gateways.tests.factories import form_data, make_gateway

pytestmark = pytest.mark.django_db

INLINE = {"HX-Request": "true"}


def checked(**overrides: str) -> GatewayForm:
    form = GatewayForm(form_data(**overrides))
    form.is_valid()
    return form


def a_free_port_below_the_ephemeral_range() -> int:
    low = (ephemeral_range() or (32768, 60999))[0]
    for port in range(low - 1, 1024, -1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


@pytest.fixture
def listener() -> Iterator[int]:
    """A real socket of this process listening on a port below the ephemeral range."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", a_free_port_below_the_ephemeral_range()))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("port", ["-5", "0", "65536", "70000", "99999999999999999999"])
def test_every_out_of_range_port_gets_the_same_message(port):
    form = checked(port=port)
    assert form.errors["port"] == [f"Port {port} is out of range: choose a port from 1 to 65535, e.g. 25001."]


@pytest.mark.parametrize("port", ["1", "65535"])
def test_the_ends_of_the_range_are_ports(port):
    assert "port" not in checked(port=port).errors


def test_a_port_in_the_ephemeral_range_is_warned_about_but_saved():
    low, high = ephemeral_range()
    form = checked(port=str(low + 7))
    assert form.is_valid()
    [warning] = form.field_warnings["port"]
    assert f"in this host's range for outgoing connections ({low}–{high}" in warning
    assert f"Prefer a port below {low}" in warning


def test_a_port_below_the_ephemeral_range_gets_no_warning():
    form = checked(port=str(a_free_port_below_the_ephemeral_range()))
    assert form.is_valid() and form.warnings == []


def test_a_port_another_program_holds_is_warned_about_when_saved(admin_client_, listener):
    import os

    response = admin_client_.post("/gateways/new/", form_data(port=str(listener)), follow=True)
    assert Gateway.objects.filter(port=listener).exists()
    html = response.content.decode()
    assert f"Port {listener} on 127.0.0.1 is in use now by pid {os.getpid()}" in html
    assert "Stop that program, or choose another port, e.g. " in html


def test_a_held_port_is_warned_about_inline(admin_client_, listener):
    response = admin_client_.post(
        "/gateways/validate/", form_data(port=str(listener)), headers={**INLINE, "HX-Trigger-Name": "port"}
    )
    html = response.content.decode()
    assert 'class="field-warning"' in html and f"Port {listener} on 127.0.0.1 is in use now" in html


def test_a_held_port_is_warned_about_on_every_address(listener):
    assert "is in use now" in " ".join(checked(server="0.0.0.0", port=str(listener)).field_warnings["port"])


def test_the_port_of_its_own_running_server_is_no_warning(listener):
    gateway = make_gateway(port=listener, state="running", pid=1)
    form = GatewayForm(form_data(port=str(listener)), instance=gateway)
    assert form.is_valid()
    assert form.field_warnings.get("port", []) == []


def test_a_server_name_that_does_not_resolve_is_warned_about_but_saved(admin_client_):
    # Beyond loopback a passphrase is needed (docs/security.md): give one, so only the name is in question.
    data = form_data(server="no.such.host.invalid", use_passphrase="on", passphrase="a long enough passphrase")
    response = admin_client_.post("/gateways/new/", data, follow=True)
    assert Gateway.objects.get().server == "no.such.host.invalid"
    html = response.content.decode()
    # Either the name server says there is no such name, or there is no name server to ask.
    assert ("no.such.host.invalid does not resolve on this host" in html
            or "Name resolution is unavailable on this host" in html)


def test_an_unresolvable_server_name_is_warned_about_inline(admin_client_):
    response = admin_client_.post(
        "/gateways/validate/", form_data(server="no.such.host.invalid"),
        headers={**INLINE, "HX-Trigger-Name": "server"},
    )
    assert "no.such.host.invalid" in response.content.decode()
    assert 'class="field-warning"' in response.content.decode()


def test_a_name_that_resolves_gets_no_warning():
    form = checked(server="localhost", port=str(a_free_port_below_the_ephemeral_range()))
    assert form.is_valid() and form.warnings == []


def test_a_name_server_that_does_not_answer_in_time_is_said_so(monkeypatch):
    # A dead name server cannot be had here: a resolver that never answers stands in for it (with
    # timeout=0 and the real one, a quick "no such name" could come back first).
    import functools
    import threading

    from portal.process import checks

    never = threading.Event()
    monkeypatch.setattr(checks, "resolve_host", functools.partial(checks.resolve_host, resolver=lambda host: never.wait()))
    addresses, problem = resolve("no.such.host.invalid", timeout=0.05)
    assert addresses == set()
    assert problem.startswith("Name resolution is unavailable on this host (no answer within 0.05 s)")


def test_overlong_python_options_are_refused_with_their_length():
    options = "-X dev " * 80 + "-X"
    form = checked(python_options=options)
    assert form.errors["python_options"] == [
        f"Python options may have at most 500 characters; these have {len(options)}: remove options, or put "
        "settings into environment variables or a file the server reads."
    ]


def test_the_browser_does_not_cut_python_options(admin_client_):
    html = admin_client_.get("/gateways/new/").content.decode()
    field = html.split('name="python_options"')[1].split(">")[0]
    assert "maxlength" not in field


def test_a_form_shown_again_with_errors_keeps_its_warnings_beside_their_fields(admin_client_):
    low, _high = ephemeral_range()
    response = admin_client_.post("/gateways/new/", form_data(name="bad name", port=str(low + 7)))
    html = response.content.decode()
    port_field = html.split('id="feedback-port"')[1].split("</div>")[0]
    assert 'class="field-warning"' in port_field and f"Port {low + 7} is in this host&#x27;s range" in port_field
    assert not Gateway.objects.exists()


@pytest.mark.parametrize("options", ["-c 'import os'", "-m http.server", "script.py", "-", "-h", "--version",
                                     "-i", "-Oc pass", "-X"])
def test_python_options_that_would_run_something_else_are_refused(options):
    form = checked(python_options=options)
    assert not form.is_valid()
    message = " ".join(form.errors["python_options"])
    assert "Python options are the interpreter's own" in message and "Remove it" in message


@pytest.mark.parametrize("options", ["-X dev", "-Xdev -O", "-W error -u", "-B -s -E", "-OO", "-W ignore::Warning",
                                     "--check-hash-based-pycs never", ""])
def test_interpreter_options_are_accepted(options):
    form = checked(python_options=options)
    form.is_valid()
    assert "python_options" not in form.errors


def documented_example_ports() -> set[int]:
    """The ports a new user copies: the README's tour, the merge page's example line, run.py's default."""
    from gateways.tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    merge = (ROOT / "templates/portal/cpf/merge.html").read_text()
    run_py = (ROOT / "examples/persondemo/run.py").read_text()
    ports = set(re.findall(r"--port (\d+)", readme)) | set(re.findall(r"Port=(\d+)", readme + merge))
    ports |= set(re.findall(r'"--port", type=int, default=(\d+)', run_py))
    return {int(p) for p in ports}


def test_the_documented_example_port_draws_no_warning_and_is_no_known_service():
    ports = documented_example_ports()
    assert len(ports) == 1, f"the examples should agree on one port, not {sorted(ports)}"
    port = ports.pop()
    form = checked(port=str(port))
    assert form.is_valid(), form.errors
    assert form.field_warnings.get("port", []) == []
    with pytest.raises(OSError):
        socket.getservbyport(port)  # not a port of a service named in /etc/services
