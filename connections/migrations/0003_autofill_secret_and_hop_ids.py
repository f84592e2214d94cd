from django.db import migrations, models

import connections.models
import pam.fields


class Migration(migrations.Migration):
    """Autofill values get an encrypted column; jump hops get ids known before their insert."""

    dependencies = [
        ("connections", "0002_tunnel"),
    ]

    operations = [
        migrations.AddField(
            model_name="connection",
            name="autofill",
            field=pam.fields.EncryptedTextField(
                blank=True,
                default="",
                help_text="Web: a JSON list of {url, username, password} typed into login forms (session-broker-v2).",
            ),
        ),
        migrations.AlterField(
            model_name="jumphop",
            name="id",
            field=models.CharField(
                default=connections.models.new_hop_id, editable=False, max_length=32, primary_key=True, serialize=False
            ),
        ),
    ]
