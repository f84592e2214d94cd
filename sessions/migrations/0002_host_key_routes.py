"""Host-key pins keyed by route (address connected to, port, jump path) with every differing key kept.

Existing pins become direct-route pins: a pin of a numeric host keeps its address; a pin of a
name is copied to each address the name resolves to now (a name that no longer resolves keeps
its spelling, and the host is pinned afresh on first use). A pending key becomes a sighting
with nobody recorded as having seen it.
"""

import hashlib
import ipaddress
import socket

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def _route(address, port, path):
    return hashlib.sha256(f"{address}\n{port}\n{path}".encode()).hexdigest()


def _addresses(host, port):
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return [host.lower()]
    found = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        found.append(str(address))
    return list(dict.fromkeys(found)) or [host.lower()]


def pins_by_route(apps, schema_editor):
    KnownHost = apps.get_model("pam_sessions", "KnownHost")
    Sighting = apps.get_model("pam_sessions", "HostKeySighting")

    def seen(pin, key_type, public_key, fingerprint):
        if fingerprint != pin.fingerprint:
            Sighting.objects.get_or_create(
                known_host=pin, fingerprint=fingerprint, seen_by=None,
                defaults={"key_type": key_type, "public_key": public_key},
            )

    for old in list(KnownHost.objects.order_by("pk")):
        pins = []
        for address in _addresses(old.host, old.port):
            route = _route(address, old.port, "")
            pin = KnownHost.objects.filter(route=route).first()
            if pin is None:
                pin = old if all(p.pk != old.pk for p in pins) else KnownHost(
                    host=old.host, port=old.port, key_type=old.key_type, public_key=old.public_key,
                    fingerprint=old.fingerprint, first_seen=old.first_seen, accepted_by_id=old.accepted_by_id,
                )
                pin.address, pin.path, pin.route = address, "", route
                pin.save()
            else:  # two names of one address: the older pin stays, the other key is kept as seen
                seen(pin, old.key_type, old.public_key, old.fingerprint)
            pins.append(pin)
        if all(p.pk != old.pk for p in pins):
            old.delete()
        if old.pending_key:
            for pin in pins:
                seen(pin, old.pending_key_type, old.pending_key, old.pending_fingerprint)


class Migration(migrations.Migration):

    dependencies = [
        ("pam_sessions", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="knownhost", name="unique_known_host"),
        migrations.AddField(
            model_name="knownhost",
            name="route",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="knownhost",
            name="address",
            field=models.CharField(default="", max_length=255),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="knownhost",
            name="path",
            field=models.TextField(blank=True, default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="knownhost",
            name="first_seen_by",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.CreateModel(
            name="HostKeySighting",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key_type", models.CharField(max_length=50)),
                ("public_key", models.TextField(help_text="Base64 of the key, as in known_hosts.")),
                ("fingerprint", models.CharField(max_length=100)),
                ("first_seen", models.DateTimeField(default=django.utils.timezone.now)),
                ("last_seen", models.DateTimeField(default=django.utils.timezone.now)),
                ("times", models.PositiveIntegerField(default=1)),
                (
                    "known_host",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="sightings", to="pam_sessions.knownhost"
                    ),
                ),
                (
                    "seen_by",
                    models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["known_host", "-last_seen"]},
        ),
        migrations.AddConstraint(
            model_name="hostkeysighting",
            constraint=models.UniqueConstraint(fields=("known_host", "fingerprint", "seen_by"), name="unique_host_key_sighting"),
        ),
        migrations.RunPython(pins_by_route, migrations.RunPython.noop),
        migrations.RemoveField(model_name="knownhost", name="pending_key_type"),
        migrations.RemoveField(model_name="knownhost", name="pending_key"),
        migrations.RemoveField(model_name="knownhost", name="pending_fingerprint"),
        migrations.AlterField(
            model_name="knownhost",
            name="route",
            field=models.CharField(
                editable=False, help_text="SHA-256 of address, port and path.", max_length=64, unique=True
            ),
        ),
        migrations.AlterField(
            model_name="knownhost",
            name="host",
            field=models.CharField(help_text="The name typed when the key was first pinned.", max_length=255),
        ),
        migrations.AlterField(
            model_name="knownhost",
            name="address",
            field=models.CharField(
                help_text="The address connected to, or its spelling sent to the last hop.", max_length=255
            ),
        ),
        migrations.AlterField(
            model_name="knownhost",
            name="path",
            field=models.TextField(
                blank=True, help_text="The jump hosts before it ('user@address:port', in order); empty when direct."
            ),
        ),
        migrations.AlterModelOptions(name="knownhost", options={"ordering": ["address", "port", "path"]}),
    ]
