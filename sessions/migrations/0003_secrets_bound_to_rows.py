"""Seal the one-use credentials of pending sessions for their row (pam.fields)."""

from django.db import migrations

from pam.fields import bind_to_rows


def forwards(apps, schema_editor):
    bind_to_rows(apps.get_model("pam_sessions", "Session"), ["secrets"])


def backwards(apps, schema_editor):
    bind_to_rows(apps.get_model("pam_sessions", "Session"), ["secrets"], reverse=True)


class Migration(migrations.Migration):
    dependencies = [
        ("pam_sessions", "0002_host_key_routes"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
