"""Seal every stored secret for its row, and move autofill values out of the plaintext
extra_config into their encrypted column (pam.fields)."""

from django.db import migrations

from pam.fields import bind_to_rows


def forwards(apps, schema_editor):
    Connection = apps.get_model("connections", "Connection")
    JumpHop = apps.get_model("connections", "JumpHop")
    bind_to_rows(Connection, ["password", "private_key"])
    bind_to_rows(JumpHop, ["password", "private_key"])
    field = Connection._meta.get_field("autofill")
    for row in Connection._base_manager.filter(extra_config__has_key="autofill").only("pk", "extra_config"):
        config = dict(row.extra_config)
        value = config.pop("autofill")
        text = value if isinstance(value, str) else ""
        Connection._base_manager.filter(pk=row.pk).update(autofill=field.seal(text, row.pk), extra_config=config)


def backwards(apps, schema_editor):
    Connection = apps.get_model("connections", "Connection")
    JumpHop = apps.get_model("connections", "JumpHop")
    for row in Connection._base_manager.exclude(autofill="").only("pk", "autofill", "extra_config"):
        config = {**row.extra_config, "autofill": row.autofill}
        Connection._base_manager.filter(pk=row.pk).update(autofill="", extra_config=config)
    bind_to_rows(Connection, ["password", "private_key"], reverse=True)
    bind_to_rows(JumpHop, ["password", "private_key"], reverse=True)


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0003_autofill_secret_and_hop_ids"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
