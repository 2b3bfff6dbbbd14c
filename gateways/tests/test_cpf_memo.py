"""A merge's forms answer the value-only fields (gateways.forms.VALUE_ONLY_FIELDS) from its
snapshot's memo when an earlier line had the same value: they must give what the page's form
gives, for good values and for bad ones (a refused value is never remembered)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from gateways.forms import VALUE_ONLY_FIELDS, GatewayForm, Snapshot
from gateways.models import Gateway
from portal.cli import CliOperator
from portal.cpf import merge

pytestmark = pytest.mark.django_db


def data(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"type": "python", "name": "PyGate", "server": "127.0.0.1", "port": 25001,
                              "connection_timeout": 5, "init_timeout": 5, "stop_timeout": 5,
                              "restart_policy": "on-failure", "allow_no_passphrase": True}
    values.update(changes)
    return values


def answer(form: GatewayForm) -> tuple[bool, dict[str, list[str]], list[str]]:
    valid = form.is_valid()
    return valid, {name: list(errors) for name, errors in form.errors.items()}, list(form.warnings)


# A bad value of each value-only field, and a good value of the same field.
BAD = [
    ("server", "bad host!", "127.0.0.1"),
    ("server", "0.0.0.0", "127.0.0.1"),  # refused by clean(): no passphrase beyond loopback
    ("python_executable", "python3", sys.executable),
    ("python_executable", "/no/such/python3", sys.executable),
    ("python_options", "-c print(1)", "-X dev"),
    ("python_options", "-X 'unclosed", "-X dev"),
    ("python_options", "-X dev " * 80, "-X dev"),
    ("restart_policy", "maybe", "always"),
    ("type", "java", "python"),
    # The form field takes these; the model's own validators refuse them (the model checks' memo).
    ("connection_timeout", 1, 5),
    ("init_timeout", 301, 5),
    ("stop_timeout", 0, 5),
    ("stop_timeout", "x", 5),
]


def test_the_cases_cover_every_value_only_field_that_can_be_refused():
    assert {field for field, _, _ in BAD} == VALUE_ONLY_FIELDS - {
        "use_passphrase", "allow_no_passphrase", "allow_unauthenticated_network"}


@pytest.mark.parametrize(("field", "bad", "good"), BAD)
def test_a_bad_value_gets_the_forms_answer_after_the_fields_good_value_was_remembered(field, bad, good):
    page = answer(GatewayForm(data(**{field: bad}), check_ports=False))
    assert page[0] is False
    snapshot = Snapshot.read()
    for i in range(2):
        remembered = GatewayForm(data(name=f"Ok{i}", port=26000 + i, **{field: good}), check_ports=False,
                                 snapshot=snapshot)
        assert remembered.is_valid(), remembered.errors
    assert any(key[:2] == ("clean", field) for key in snapshot.memo)  # the good value was remembered
    for _ in range(2):  # the same bad value again: checked again, never remembered
        assert answer(GatewayForm(data(**{field: bad}), check_ports=False, snapshot=snapshot)) == page


def test_remembered_values_give_the_same_cleaned_data_definition_and_warnings_as_the_form():
    values = {"server": "LocalHost", "python_options": "  -X dev  ", "python_executable": "", "type": "",
              "restart_policy": "always", "use_passphrase": "", "connection_timeout": "7"}
    snapshot = Snapshot.read()
    for i in range(3):
        line = data(name=f"G{i}", port=26000 + i, **values)
        quick = GatewayForm(line, check_ports=False, snapshot=snapshot)
        page = GatewayForm(line, check_ports=False)
        assert answer(quick) == answer(page) == (True, {}, page.warnings)
        assert quick.cleaned_data == page.cleaned_data
        fields = [f.attname for f in Gateway._meta.concrete_fields if f.name != "run_key"]
        assert [getattr(quick.instance, f) for f in fields] == [getattr(page.instance, f) for f in fields]


@pytest.mark.parametrize(("key", "value"), [
    ("PythonExecutable", "python3"),
    ("PythonExecutable", "/no/such/python3"),
    ("PythonOptions", "-c print(1)"),
    ("Server", "0.0.0.0"),
    ("Server", "bad host!"),
    ("LogFile", "relative.log"),
    ("Name", "bad name"),
    ("Port", "x"),
    ("RestartPolicy", "maybe"),
])
def test_a_bad_line_after_good_lines_gets_the_problem_it_gets_alone(key, value):
    values = {"Name": "Bad", "Port": "25009", "AllowNoPassphrase": "1", key: value}
    bad = "CreateGateway:" + ",".join(f"{k}={v}" for k, v in values.items())
    alone = merge.merge(f"[Actions]\n{bad}\n", CliOperator(), apply=True)
    good = [f"CreateGateway:Name=G{i},AllowNoPassphrase=1,Port={25000 + i},Server=127.0.0.1,PythonExecutable={sys.executable},"
            "PythonOptions=-X dev,RestartPolicy=always" for i in range(3)]
    after = merge.merge("[Actions]\n" + "\n".join([*good, bad]) + "\n", CliOperator(), apply=True)
    assert alone.problems and not after.applied and Gateway.objects.count() == 0
    assert [(p.line, p.key, p.message) for p in after.problems] == [
        (p.line + 3, p.key, p.message) for p in alone.problems]
