"""Keep only a digest of each login's session key; existing logins stay valid (their keys are
hashed in place)."""

import hashlib

from django.db import migrations, models


def hash_existing_keys(apps, schema_editor):
    LoginSession = apps.get_model("accounts", "LoginSession")
    for row in LoginSession.objects.exclude(session_key__regex=r"^[0-9a-f]{64}$"):
        LoginSession.objects.create(
            session_key=hashlib.sha256(row.session_key.encode()).hexdigest(),
            session_data=row.session_data,
            expire_date=row.expire_date,
            created_at=row.created_at,
            user_id=row.user_id,
        )
        row.delete()


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_oidc"),
    ]

    operations = [
        migrations.AlterField(
            model_name="loginsession",
            name="session_key",
            field=models.CharField(max_length=64, primary_key=True, serialize=False, verbose_name="session key digest"),
        ),
        migrations.RunPython(hash_existing_keys, migrations.RunPython.noop),
    ]
