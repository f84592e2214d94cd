"""Pins made before routes existed keep working, as direct-route pins, after the migration."""

import subprocess

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from targets.models import KnownHost
from tests.factories import make_user
from tests.sessions.test_host_keys import connect

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("pam_sessions", "0001_initial")]
OTHER_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIG9ubHktYS10ZXN0LWtleS1ub3QtdGhlLXJlYWwtb25l"


def migrate(targets=None):
    """Migrate to ``targets`` (default: every app's latest); return the models as of then."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    # (app, None) leaves none of that app applied: no state of it to return.
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


def test_pins_made_before_routes_keep_working_as_direct_route_pins(sshd):
    old_apps = migrate(BEFORE)
    try:
        OldKnownHost = old_apps.get_model("pam_sessions", "KnownHost")
        real_key = (sshd.host_key.with_suffix(".pub")).read_text().split()[1]
        listing = subprocess.run(["ssh-keygen", "-lf", f"{sshd.host_key}.pub"], capture_output=True, text=True, check=True)
        real_print = listing.stdout.split()[1]
        OldKnownHost.objects.create(host="127.0.0.1", port=sshd.port, key_type="ssh-ed25519", public_key=real_key,
                                    fingerprint=real_print)
        OldKnownHost.objects.create(host="localhost", port=sshd.port + 1, key_type="ssh-ed25519", public_key=OTHER_KEY,
                                    fingerprint="SHA256:old", pending_key_type="ssh-ed25519", pending_key=real_key,
                                    pending_fingerprint=real_print)
    finally:
        migrate()

    pin = KnownHost.objects.get(address="127.0.0.1", port=sshd.port, path="")
    assert pin.fingerprint == real_print and pin.host == "127.0.0.1"
    assert connect(make_user("poweruser"), sshd).status == "ended"
    assert not pin.sightings.exists()

    named = KnownHost.objects.get(address="127.0.0.1", port=sshd.port + 1, path="")  # localhost, resolved
    assert named.host == "localhost" and named.fingerprint == "SHA256:old"
    pending = named.sightings.get()
    assert (pending.fingerprint, pending.seen_by) == (real_print, None)


def test_host_keys_moving_to_targets_keep_their_rows_and_content_types():
    """Pins and sightings made while sessions held the models are targets' afterwards, unchanged."""
    old_apps = migrate([("pam_sessions", "0004_viewer_credential"), ("targets", None)])
    try:
        OldKnownHost = old_apps.get_model("pam_sessions", "KnownHost")
        OldSighting = old_apps.get_model("pam_sessions", "HostKeySighting")
        user = old_apps.get_model("accounts", "User").objects.create(username="seer", email="seer@ex.com")
        old = OldKnownHost.objects.create(
            route="r" * 64, host="db", address="10.0.0.5", port=22, path="ops@10.0.0.1:22",
            key_type="ssh-ed25519", public_key="AAAA", fingerprint="SHA256:pinned", first_seen_by=user,
        )
        OldSighting.objects.create(
            known_host=old, key_type="ssh-ed25519", public_key="BBBB", fingerprint="SHA256:other", seen_by=user,
        )
        old_type = ContentType.objects.get_or_create(app_label="pam_sessions", model="knownhost")[0].pk
        ContentType.objects.clear_cache()
    finally:
        migrate()

    pin = KnownHost.objects.get(pk=old.pk)
    assert (pin.route, pin.where, pin.fingerprint, pin.first_seen_by.email) == (
        "r" * 64, "ops@10.0.0.1:22 > 10.0.0.5:22", "SHA256:pinned", "seer@ex.com"
    )
    sighting = pin.sightings.get()
    assert (sighting.fingerprint, sighting.seen_by.email) == ("SHA256:other", "seer@ex.com")
    ContentType.objects.clear_cache()
    moved = ContentType.objects.get(pk=old_type)
    assert (moved.app_label, moved.model_class()) == ("targets", KnownHost)
