"""KnownHost and HostKeySighting now belong to targets (targets 0001): drop them from this app's
state only. Their tables, rows and constraints stay exactly as they are."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("pam_sessions", "0004_viewer_credential"),
        ("targets", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="HostKeySighting"),
                migrations.DeleteModel(name="KnownHost"),
            ],
            database_operations=[],
        ),
    ]
