"""Node now belongs to the nodes app (nodes 0001): drop it from this app's state only. Its table
and rows stay exactly as they are."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("pam_sessions", "0006_session_trail"),
        ("nodes", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Node"),
            ],
            database_operations=[],
        ),
    ]
