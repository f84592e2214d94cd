"""A tunnel's worker proves itself alive as a node of the registry (nodes.Node): the rows keep
no heartbeat of their own."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0004_secrets_bound_to_rows"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="tunnel",
            name="seen_at",
        ),
        migrations.AlterField(
            model_name="tunnel",
            name="node",
            field=models.CharField(blank=True, help_text="The node (worker) holding the tunnel.", max_length=100),
        ),
    ]
