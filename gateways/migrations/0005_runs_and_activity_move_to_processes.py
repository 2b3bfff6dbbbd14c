"""The gateways' runs and activity move into the tables every kind of process shares.

Every row keeps its id (bookmarked Activity pages carry (at, id) cursors, and
Activity.run keeps pointing at its run), its gateway as (kind "gateway", object_id)
and the gateway's name. Undone, the rows of kind "gateway" go back.
"""

from django.core.management.color import no_style
from django.db import migrations

BATCH = 2000
KIND = "gateway"

RUN_FIELDS = ["id", "requested_by_id", "trigger", "host", "pid", "started_at", "ready_at", "stopped_at", "outcome",
              "exit_code", "signal", "command", "message"]
ACTIVITY_FIELDS = ["id", "at", "from_state", "to_state", "pid", "port", "exit_code", "signal", "expected", "trigger",
                   "user_id", "level", "host", "message", "run_id", "seq"]


def _batches(rows_of, fields):
    """Rows as dicts, by id, a batch at a time: a table of millions never sits in memory at once."""
    last = 0
    while True:
        rows = list(rows_of.filter(id__gt=last).order_by("id").values(*fields)[:BATCH])
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def _reset_sequences(schema_editor, *models):
    """Rows were written with their ids: the next id must come after them (PostgreSQL's sequences)."""
    for sql in schema_editor.connection.ops.sequence_reset_sql(no_style(), list(models)):
        schema_editor.execute(sql)


def forward(apps, schema_editor):
    OldRun, OldActivity = apps.get_model("gateways", "Run"), apps.get_model("gateways", "Activity")
    Run, Activity = apps.get_model("processes", "Run"), apps.get_model("processes", "Activity")
    for rows in _batches(OldRun.objects.all(), [*RUN_FIELDS, "gateway_id", "gateway_name"]):
        Run.objects.bulk_create(
            Run(kind=KIND, object_id=row.pop("gateway_id"), name=row.pop("gateway_name"), **row) for row in rows
        )
    for rows in _batches(OldActivity.objects.all(), [*ACTIVITY_FIELDS, "gateway_id", "gateway_name"]):
        Activity.objects.bulk_create(
            Activity(kind=KIND, object_id=row.pop("gateway_id"), name=row.pop("gateway_name"), **row)
            for row in rows
        )
    _reset_sequences(schema_editor, Run, Activity)


def backward(apps, schema_editor):
    OldRun, OldActivity = apps.get_model("gateways", "Run"), apps.get_model("gateways", "Activity")
    Run, Activity = apps.get_model("processes", "Run"), apps.get_model("processes", "Activity")
    Gateway = apps.get_model("gateways", "Gateway")
    existing = set(Gateway.objects.values_list("id", flat=True))
    runs = Run.objects.filter(kind=KIND)
    for rows in _batches(runs, [*RUN_FIELDS, "object_id", "name"]):
        OldRun.objects.bulk_create(
            OldRun(gateway_id=_gateway(row.pop("object_id"), existing), gateway_name=row.pop("name"), **row)
            for row in rows
        )
    run_ids = set(OldRun.objects.values_list("id", flat=True))
    for rows in _batches(Activity.objects.filter(kind=KIND), [*ACTIVITY_FIELDS, "object_id", "name"]):
        OldActivity.objects.bulk_create(
            OldActivity(gateway_id=_gateway(row.pop("object_id"), existing), gateway_name=row.pop("name"),
                        **{**row, "run_id": row["run_id"] if row["run_id"] in run_ids else None})
            for row in rows
        )
    Activity.objects.filter(kind=KIND).delete()
    runs.delete()
    _reset_sequences(schema_editor, OldRun, OldActivity)


def _gateway(object_id, existing):
    return object_id if object_id in existing else None


class Migration(migrations.Migration):

    dependencies = [
        ("gateways", "0004_gateway_request_seq"),
        ("processes", "0001_initial"),
    ]

    operations = [
        # The old tables go in the next migration: PostgreSQL refuses to drop a table in the
        # transaction that wrote rows with deferred foreign-key checks pending.
        migrations.RunPython(forward, backward),
    ]
