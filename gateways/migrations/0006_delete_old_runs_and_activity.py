from django.db import migrations


class Migration(migrations.Migration):
    """The gateways' own Run and Activity tables, emptied into processes' by 0005."""

    dependencies = [
        ("gateways", "0005_runs_and_activity_move_to_processes"),
    ]

    operations = [
        migrations.DeleteModel(name="Activity"),
        migrations.DeleteModel(name="Run"),
    ]
