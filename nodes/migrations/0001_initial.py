"""Node moves here from sessions, in Django's state only.

Its table stays as sessions created it (``db_table``), rows and all; sessions 0007 drops it from
its own state once this has taken it. Its content type moves along, so its permissions and the
admin's history of it (anything pointing at a content type) keep following it.
"""

import django.utils.timezone
from django.db import migrations, models

MOVED = ("node",)


def _move_content_types(apps, schema_editor, source, destination):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MOVED:
        if not types.filter(app_label=destination, model=model).exists():
            types.filter(app_label=source, model=model).update(app_label=destination)


def forwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, "pam_sessions", "nodes")


def backwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, "nodes", "pam_sessions")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        # The table, as sessions left it.
        ("pam_sessions", "0006_session_trail"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Node",
                    fields=[
                        ("id", models.CharField(max_length=100, primary_key=True, serialize=False)),
                        ("hostname", models.CharField(max_length=255)),
                        ("pid", models.PositiveIntegerField()),
                        ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("seen_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                    ],
                    options={"db_table": "pam_sessions_node", "ordering": ["-seen_at"]},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
