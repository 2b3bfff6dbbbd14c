"""The migrations on the configured engine (SQLite, or PostgreSQL with PORTAL_DATABASE_URL=postgres://…)."""

from io import StringIO

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def project_apps() -> list[str]:
    """The labels of this project's apps that have migrations (not Django's own)."""
    executor = MigrationExecutor(connection)
    labels = {app for app, _ in executor.loader.graph.leaf_nodes()}
    return sorted(
        label for label in labels
        if (settings.BASE_DIR / apps.get_app_config(label).name.split(".")[0]).is_dir()
    )


@pytest.mark.django_db
def test_the_models_need_no_migration_that_is_not_written():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:  # --check exits 1 when a migration is missing
        pytest.fail(f"a model change has no migration: run `manage.py makemigrations`\n{out.getvalue()}")


@pytest.mark.django_db(transaction=True)
def test_every_migration_is_undone_and_done_again():
    labels = project_apps()
    assert {"portal", "gateways"} <= set(labels)
    try:
        for label in labels:
            call_command("migrate", label, "zero", verbosity=0)
        tables = set(connection.introspection.table_names())
        assert not {t for t in tables if t.split("_")[0] in labels}, "a table survived its app's migrations undone"
    finally:
        call_command("migrate", verbosity=0)
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    tables = set(connection.introspection.table_names())
    assert {"gateways_gateway", "processes_activity"} <= tables
