"""Every node says what it is (web, worker, bastion); the nodes registered until now were web
nodes, the only kind that registered."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("nodes", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="node",
            name="kind",
            field=models.CharField(
                choices=[
                    ("web", "Web node (websockets, live sessions)"),
                    ("worker", "Worker (tunnels)"),
                    ("bastion", "SSH bastion listener"),
                ],
                default="web",
                max_length=10,
            ),
            preserve_default=False,
        ),
    ]
