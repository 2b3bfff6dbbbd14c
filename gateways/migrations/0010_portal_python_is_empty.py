"""An empty Python executable is the portal's own interpreter, resolved at each start, so that an
export names none and moves between portals and hosts. Definitions saved with the portal's own
interpreter written in full (the form filled it in) are made empty: on this host that runs the
very same file (processes.models.is_portal_python says which paths count). Any other path is kept."""

from django.db import migrations, models


def forget_portal_python(apps, schema_editor):  # type: ignore[no-untyped-def]
    from processes.models import forget_portal_python

    forget_portal_python(apps.get_model("gateways", "Gateway"))


class Migration(migrations.Migration):

    dependencies = [
        ('gateways', '0009_help_texts'),
    ]

    operations = [
        migrations.AlterField(
            model_name='gateway',
            name='python_executable',
            field=models.CharField(blank=True, default='', help_text="Python 3.9 or newer, with msgpack. Blank: the portal's own interpreter, wherever the portal runs (an export then names none, so it works on another host).", max_length=500, verbose_name='Python executable path'),
        ),
        migrations.RunPython(forget_portal_python, migrations.RunPython.noop),
    ]
