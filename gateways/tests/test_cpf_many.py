"""Merging many gateways at once: the checks answered from the merge's snapshot and the rows
written together at its end give what one form and one save per line gave.

A 1,000-line file with one bad line changes nothing and names that line; lines see what the
lines above them did (a new name, a port taken or freed) although nothing is written before
the end; every definition gets its own values and its own history entry.
"""

from __future__ import annotations

import pytest

from gateways.models import Gateway
from gateways.tests.factories import make_gateway
from portal.cli import CliOperator
from portal.cpf import merge
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db

COUNT = 1000


def apply(text: str, user=None):  # type: ignore[no-untyped-def]
    return merge.merge(text, user or CliOperator(), apply=True)


def creates(count: int = COUNT) -> list[str]:
    return [f"CreateGateway:Name=G{i:04d},AllowNoPassphrase=1,Port={20000 + i},PythonOptions=-X dev" for i in range(count)]


@pytest.mark.parametrize(
    "bad, key, words",
    [
        # A value the form refuses.
        ("CreateGateway:Name=Bad,AllowNoPassphrase=1,Port=20700,PythonOptions=-m http.server", "PythonOptions",
         "would run something other than the gateway server"),
        # A port that a line far above took: it is not in the database yet, only in the snapshot.
        ("CreateGateway:Name=Bad,AllowNoPassphrase=1,Port=20003", "Port", "already used by gateway G0003"),
        # A name that a line far above created, in another case.
        ("CreateGateway:Name=g0010,AllowNoPassphrase=1,Port=29999", "Name", "already on line 12"),
        # A port of a definition in the database.
        ("CreateGateway:Name=Bad,AllowNoPassphrase=1,Port=29000", "Port", "already used by gateway Existing"),
    ],
)
def test_one_bad_line_among_a_thousand_changes_nothing_and_names_that_line(bad, key, words):
    make_gateway(name="Existing", port=29000)
    before = list(Gateway.objects.values_list("name", "port", "changed_at"))
    lines = creates()
    lines[700] = bad
    result = apply("[Actions]\n" + "\n".join(lines) + "\n")
    assert not result.applied
    assert [(p.line, p.key) for p in result.problems] == [(702, key)]  # [Actions] is line 1
    assert words in result.problems[0].message
    assert list(Gateway.objects.values_list("name", "port", "changed_at")) == before
    assert AuditEntry.objects.count() == 0


def test_a_thousand_creations_are_written_each_with_its_values_and_history(administrator):
    result = apply("[Actions]\n" + "\n".join(creates()) + "\n", administrator)
    assert result.applied and result.counts["created"] == COUNT
    rows = Gateway.objects.order_by("name")
    assert [(g.name, g.port, g.python_options, g.created_by_id) for g in rows] == [
        (f"G{i:04d}", 20000 + i, "-X dev", administrator.pk) for i in range(COUNT)]
    history = AuditEntry.objects.filter(action="created").order_by("object_name")
    assert [(e.object_name, e.object_id, e.actor_name) for e in history] == [
        (g.name, g.pk, "ada (cpf merge)") for g in rows]
    assert history[0].changes["port"] == {"before": None, "after": 20000}
    # Merged again: already as asked, nothing written.
    again = apply("[Actions]\n" + "\n".join(creates()) + "\n", administrator)
    assert again.counts["unchanged"] == COUNT and AuditEntry.objects.count() == COUNT


def test_modifications_write_only_each_definitions_changed_fields_and_one_entry_each(administrator):
    a = make_gateway(name="A", port=25001, stop_timeout=5)
    b = make_gateway(name="B", port=25002, stop_timeout=5)
    c = make_gateway(name="C", port=25003, stop_timeout=5)
    # The keeper's report arrives meanwhile: a merge writes the definition, never the runtime state.
    Gateway.objects.filter(pk=c.pk).update(last_error="seen by the keeper")
    stamps = dict(Gateway.objects.values_list("name", "changed_at"))
    result = apply("[Actions]\nModifyGateway:Name=A,StopTimeout=9\nModifyGateway:Name=B,StopTimeout=9\n"
                   "ModifyGateway:Name=C,Port=25010,InitTimeout=7\n", administrator)
    assert result.applied and result.counts["modified"] == 3
    rows = {g.name: g for g in Gateway.objects.all()}
    assert [(rows[n].port, rows[n].stop_timeout, rows[n].init_timeout) for n in "ABC"] == [
        (25001, 9, 5), (25002, 9, 5), (25010, 5, 7)]
    assert rows["C"].last_error == "seen by the keeper"
    assert all(rows[n].changed_at > stamps[n] and rows[n].changed_by == administrator for n in "ABC")
    entries = {e.object_name: e for e in AuditEntry.objects.filter(action="changed")}
    assert entries["A"].changes == {"stop_timeout": {"before": 5, "after": 9}}
    assert entries["C"].changes == {"port": {"before": 25003, "after": 25010},
                                    "init_timeout": {"before": 5, "after": 7}}
    assert entries["B"].object_id == b.pk and entries["A"].object_id == a.pk


def test_a_port_freed_by_a_line_above_may_be_taken_by_a_line_below():
    make_gateway(name="Old", port=25001)
    make_gateway(name="Mover", port=25002)
    result = apply("[Actions]\nDeleteGateway:Name=Old\nModifyGateway:Name=Mover,Port=25003\n"
                   "CreateGateway:Name=New1,AllowNoPassphrase=1,Port=25001\nCreateGateway:Name=New2,AllowNoPassphrase=1,Port=25002\n"
                   "CreateGateway:Name=New3,AllowNoPassphrase=1,Port=25003\n")
    # The last line takes the port Mover moved to: refused, as two saves on the page would be.
    assert [(p.line, p.key) for p in result.problems] == [(6, "Port")]
    assert "already used by gateway Mover" in result.problems[0].message
    assert sorted(Gateway.objects.values_list("name", "port")) == [("Mover", 25002), ("Old", 25001)]
    result = apply("[Actions]\nDeleteGateway:Name=Old\nModifyGateway:Name=Mover,Port=25003\n"
                   "CreateGateway:Name=New1,AllowNoPassphrase=1,Port=25001\nCreateGateway:Name=New2,AllowNoPassphrase=1,Port=25002\n")
    assert result.applied, result.problems
    assert sorted(Gateway.objects.values_list("name", "port")) == [
        ("Mover", 25003), ("New1", 25001), ("New2", 25002)]
