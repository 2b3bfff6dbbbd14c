"""An empty Python executable is the portal's own interpreter, resolved at each start, so that an
export names none and moves between portals and hosts; and new applications get 2 workers (x 2
threads for WSGI) instead of 1 x 1 (existing definitions keep theirs: only the defaults change).

Definitions saved with the portal's own interpreter written in full (the form filled it in) are
made empty, except where the application directory has a requirements.txt: empty would then mean
"build a virtualenv from it" (WebApp.found_requirements), not what runs today."""

import os

import django.core.validators
from django.db import migrations, models


def forget_portal_python(apps, schema_editor):  # type: ignore[no-untyped-def]
    from processes.models import forget_portal_python

    forget_portal_python(apps.get_model("webapps", "WebApp"),
                         unless=lambda app: os.path.isfile(os.path.join(app.directory, "requirements.txt")))


class Migration(migrations.Migration):

    dependencies = [
        ('webapps', '0004_help_texts'),
    ]

    operations = [
        migrations.AlterField(
            model_name='webapp',
            name='python_executable',
            field=models.CharField(blank=True, help_text="The interpreter that runs the application. Blank: the portal's own (wherever the portal runs), unless a requirements file is given or the application directory has a requirements.txt.", max_length=500, verbose_name='Python executable path'),
        ),
        migrations.AlterField(
            model_name='webapp',
            name='requirements_file',
            field=models.CharField(blank=True, help_text="Instead of an interpreter: a requirements.txt from which the portal builds the application's own virtualenv, as its user, in its own folder (and rebuilds it when the file changes). Blank, with no interpreter either: the application directory's requirements.txt, when it has one.", max_length=500),
        ),
        migrations.AlterField(
            model_name='webapp',
            name='threads',
            field=models.PositiveSmallIntegerField(default=2, help_text='Threads per worker for a WSGI application, 1 to 64. Blank: 2 for WSGI, 1 for ASGI (one event loop per worker).', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(64)]),
        ),
        migrations.AlterField(
            model_name='webapp',
            name='workers',
            field=models.PositiveSmallIntegerField(default=2, help_text="Worker processes, 1 to 32. Default 2: with two or more, a reload or a crashed worker loses no request; each costs the application's memory once more.", validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(32)]),
        ),
        migrations.RunPython(forget_portal_python, migrations.RunPython.noop),
    ]
