"""KnownHost and HostKeySighting move here from sessions, in Django's state only.

Their tables stay as sessions created them (``db_table``), rows and all; sessions 0005 drops
them from its own state once this has taken them. Their content types move along, so the
admin's history of them (and anything else pointing at a content type) keeps following them.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MOVED = ("knownhost", "hostkeysighting")
KEY_HELP = "Base64 of the key, as in known_hosts."
PATH_HELP = "The jump hosts before it ('user@address:port', in order); empty when direct."


def _id():
    return models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")


def _user():
    return models.ForeignKey(
        blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL
    )


def _move_content_types(apps, schema_editor, source, destination):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MOVED:
        if not types.filter(app_label=destination, model=model).exists():
            types.filter(app_label=source, model=model).update(app_label=destination)


def forwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, "pam_sessions", "targets")


def backwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, "targets", "pam_sessions")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        # The tables, as sessions left them.
        ("pam_sessions", "0004_viewer_credential"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="KnownHost",
                    fields=[
                        ("id", _id()),
                        (
                            "route",
                            models.CharField(
                                editable=False, help_text="SHA-256 of address, port and path.", max_length=64, unique=True
                            ),
                        ),
                        ("host", models.CharField(help_text="The name typed when the key was first pinned.", max_length=255)),
                        (
                            "address",
                            models.CharField(
                                help_text="The address connected to, or its spelling sent to the last hop.", max_length=255
                            ),
                        ),
                        ("port", models.PositiveIntegerField()),
                        ("path", models.TextField(blank=True, help_text=PATH_HELP)),
                        ("key_type", models.CharField(max_length=50)),
                        ("public_key", models.TextField(help_text=KEY_HELP)),
                        ("fingerprint", models.CharField(max_length=100)),
                        ("first_seen", models.DateTimeField(default=django.utils.timezone.now)),
                        ("accepted_by", _user()),
                        ("first_seen_by", _user()),
                    ],
                    options={"db_table": "pam_sessions_knownhost", "ordering": ["address", "port", "path"]},
                ),
                migrations.CreateModel(
                    name="HostKeySighting",
                    fields=[
                        ("id", _id()),
                        ("key_type", models.CharField(max_length=50)),
                        ("public_key", models.TextField(help_text=KEY_HELP)),
                        ("fingerprint", models.CharField(max_length=100)),
                        ("first_seen", models.DateTimeField(default=django.utils.timezone.now)),
                        ("last_seen", models.DateTimeField(default=django.utils.timezone.now)),
                        ("times", models.PositiveIntegerField(default=1)),
                        ("seen_by", _user()),
                        (
                            "known_host",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="sightings",
                                to="targets.knownhost",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "pam_sessions_hostkeysighting",
                        "ordering": ["known_host", "-last_seen"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("known_host", "fingerprint", "seen_by"), name="unique_host_key_sighting"
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
