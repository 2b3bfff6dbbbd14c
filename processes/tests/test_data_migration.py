"""The gateways' runs and activity move into processes' tables: every row, with its id and links.

The rows are written with the old schema (the migration state before
gateways 0005), then the migrations run forward, as an upgrade would; and back.
Runs on the configured engine (SQLite, or PostgreSQL with PORTAL_DATABASE_URL=postgres://…).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

OLD = [("gateways", "0004_gateway_request_seq"), ("processes", None)]
T0 = dt.datetime(2024, 5, 31, 12, 0, tzinfo=dt.UTC)


def _migrate(targets: list[tuple[str, str | None]]):  # type: ignore[no-untyped-def]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state([t for t in targets if t[1]]).apps


def _leaves() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def old_rows(django_user_model):  # type: ignore[no-untyped-def]
    """The old schema with a kept gateway, a deleted one's rows, a user and linked runs."""
    try:
        apps = _migrate(OLD)
        Gateway = apps.get_model("gateways", "Gateway")
        Run, Activity = apps.get_model("gateways", "Run"), apps.get_model("gateways", "Activity")
        User = apps.get_model("auth", "User")
        ada = User.objects.create(username="ada")
        kept = Gateway.objects.create(name="PyGate", port=55001, state="stopped", last_seq=7)
        run = Run.objects.create(gateway=kept, gateway_name="PyGate", requested_by=ada, trigger="ada", host="alpha",
                                 pid=4242, started_at=T0, outcome="exited", exit_code=3, command="python -m x")
        gone_run = Run.objects.create(gateway=None, gateway_name="Gone", trigger="keeper", host="beta", pid=7,
                                      started_at=T0, outcome="stopped")
        rows = [
            Activity.objects.create(gateway=kept, gateway_name="PyGate", at=T0, from_state="starting",
                                    to_state="running", pid=4242, port=55001, trigger="ada", user=ada,
                                    host="alpha", message="ready", run=run, seq=1),
            Activity.objects.create(gateway=kept, gateway_name="PyGate", at=T0 + dt.timedelta(seconds=1),
                                    from_state="running", to_state="exited", pid=4242, port=55001, exit_code=3,
                                    expected=False, trigger="keeper", level="error", host="alpha", run=run, seq=2),
            Activity.objects.create(gateway=None, gateway_name="Gone", at=T0, trigger="api:ada",
                                    host="beta", message="Start requested", run=gone_run),
        ]
        yield {"kept": kept.pk, "runs": [run.pk, gone_run.pk], "activity": [a.pk for a in rows], "ada": ada.pk}
    finally:
        call_command("migrate", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_every_run_and_activity_row_moves_with_its_id_gateway_name_and_run(old_rows):  # type: ignore[no-untyped-def]
    apps = _migrate(_leaves())
    Gateway = apps.get_model("gateways", "Gateway")
    Run, Activity = apps.get_model("processes", "Run"), apps.get_model("processes", "Activity")

    assert list(Gateway.objects.values_list("pk", "name", "port", "last_seq")) == [
        (old_rows["kept"], "PyGate", 55001, 7)
    ]
    runs = {r.pk: r for r in Run.objects.all()}
    assert sorted(runs) == sorted(old_rows["runs"])
    kept_run, gone_run = runs[old_rows["runs"][0]], runs[old_rows["runs"][1]]
    assert (kept_run.kind, kept_run.object_id, kept_run.name) == ("gateway", old_rows["kept"], "PyGate")
    assert (kept_run.requested_by_id, kept_run.pid, kept_run.outcome, kept_run.exit_code, kept_run.command) == (
        old_rows["ada"], 4242, "exited", 3, "python -m x"
    )
    assert (gone_run.kind, gone_run.object_id, gone_run.name, gone_run.host) == ("gateway", None, "Gone", "beta")

    rows = {a.pk: a for a in Activity.objects.all()}
    assert sorted(rows) == sorted(old_rows["activity"])
    ready, exited, gone = (rows[pk] for pk in old_rows["activity"])
    assert (ready.kind, ready.object_id, ready.name, ready.run_id, ready.seq, ready.user_id) == (
        "gateway", old_rows["kept"], "PyGate", kept_run.pk, 1, old_rows["ada"]
    )
    assert (ready.at, ready.from_state, ready.to_state, ready.port, ready.message) == (
        T0, "starting", "running", 55001, "ready"
    )
    assert (exited.exit_code, exited.expected, exited.level, exited.seq) == (3, False, "error", 2)
    assert (gone.object_id, gone.name, gone.run_id, gone.trigger) == (None, "Gone", gone_run.pk, "api:ada")
    # The old tables are gone; the next row takes an id after the moved ones (PostgreSQL's sequence).
    assert "gateways_activity" not in connection.introspection.table_names()
    new = Activity.objects.create(kind="gateway", object_id=old_rows["kept"], name="PyGate", at=T0, trigger="x")
    assert new.pk > max(old_rows["activity"])
    assert Run.objects.create(kind="gateway", name="PyGate", trigger="x", host="a", started_at=T0).pk > max(
        old_rows["runs"]
    )


@pytest.mark.django_db(transaction=True)
def test_the_move_is_undone_with_every_gateway_row(old_rows):  # type: ignore[no-untyped-def]
    _migrate(_leaves())
    apps = _migrate(OLD)
    Run, Activity = apps.get_model("gateways", "Run"), apps.get_model("gateways", "Activity")
    assert sorted(Run.objects.values_list("pk", "gateway_id", "gateway_name")) == sorted(
        [(old_rows["runs"][0], old_rows["kept"], "PyGate"), (old_rows["runs"][1], None, "Gone")]
    )
    assert sorted(Activity.objects.values_list("pk", "gateway_id", "gateway_name", "run_id", "seq")) == sorted([
        (old_rows["activity"][0], old_rows["kept"], "PyGate", old_rows["runs"][0], 1),
        (old_rows["activity"][1], old_rows["kept"], "PyGate", old_rows["runs"][0], 2),
        (old_rows["activity"][2], None, "Gone", old_rows["runs"][1], None),
    ])
