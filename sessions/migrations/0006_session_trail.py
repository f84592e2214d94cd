
import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def channels_to_trail(apps, schema_editor):
    """Carry each ended session's channels (JSON until now) over to its trail rows."""
    Session = apps.get_model("pam_sessions", "Session")
    SessionChannel = apps.get_model("pam_sessions", "SessionChannel")
    for session in Session.objects.exclude(channels=[]).only("pk", "channels", "started_at", "ended_at"):
        for channel in session.channels or []:
            SessionChannel.objects.create(
                session_id=session.pk,
                kind=str(channel.get("type", ""))[:20],
                opened_at=session.started_at or session.ended_at or django.utils.timezone.now(),
                closed_at=session.ended_at,
                bytes_in=int(channel.get("bytes_client_to_server", 0)),
                bytes_out=int(channel.get("bytes_server_to_client", 0)),
            )


class Migration(migrations.Migration):

    dependencies = [
        ('pam_sessions', '0005_host_keys_move_to_targets'),
    ]

    operations = [
        migrations.CreateModel(
            name='SessionChannel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(help_text='shell, telnet, sftp, …', max_length=20)),
                ('opened_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('bytes_in', models.BigIntegerField(default=0, help_text='Client to target.')),
                ('bytes_out', models.BigIntegerField(default=0, help_text='Target to client.')),
                ('session', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='trail_channels', to='pam_sessions.session')),
            ],
            options={
                'ordering': ['opened_at', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='TransferredFile',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=255)),
                ('path', models.TextField()),
                ('direction', models.CharField(choices=[('upload', 'To the target'), ('download', 'From the target')], max_length=10)),
                ('size', models.BigIntegerField(default=0)),
                ('sha256', models.CharField(blank=True, max_length=64)),
                ('status', models.CharField(choices=[('ok', 'Complete'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='ok', max_length=10)),
                ('stored', models.CharField(blank=True, max_length=255)),
                ('opened_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('channel', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='files', to='pam_sessions.sessionchannel')),
            ],
            options={
                'ordering': ['opened_at'],
            },
        ),
        migrations.RunPython(channels_to_trail, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='session',
            name='channels',
        ),
    ]
