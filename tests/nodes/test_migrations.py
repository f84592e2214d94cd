"""Nodes registered before the registry moved to its own app keep their rows (as web nodes), and
tunnels keep theirs without their old heartbeat column."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from connections.models import Tunnel
from nodes.choices import NodeKind
from nodes.models import Node
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.django_db(transaction=True)

# The newest migrations of the apps this change touches, as merge-layers left them.
BEFORE = [("pam_sessions", "0006_session_trail"), ("connections", "0004_secrets_bound_to_rows"), ("nodes", None)]


def migrate(targets=None):
    """Migrate to ``targets`` (default: every app's latest); return the models as of then."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


def test_nodes_moving_to_their_app_keep_their_rows_and_content_type():
    seen = timezone.now() - timedelta(seconds=3)
    old_apps = migrate(BEFORE)
    try:
        OldNode = old_apps.get_model("pam_sessions", "Node")
        OldNode.objects.create(id="web-a-1-abc", hostname="web-a", pid=101, seen_at=seen)
        OldNode.objects.create(id="web-b-2-def", hostname="web-b", pid=202, seen_at=seen - timedelta(minutes=5))
        started = {node.pk: node.started_at for node in OldNode.objects.all()}
        old_type = ContentType.objects.get_or_create(app_label="pam_sessions", model="node")[0]
        permission = Permission.objects.get_or_create(content_type=old_type, codename="view_node",
                                                      defaults={"name": "Can view node"})[0]
        ContentType.objects.clear_cache()
    finally:
        migrate()

    rows = {node.pk: node for node in Node.objects.all()}
    assert set(rows) == {"web-a-1-abc", "web-b-2-def"}
    assert (rows["web-a-1-abc"].hostname, rows["web-a-1-abc"].pid, rows["web-a-1-abc"].seen_at) == ("web-a", 101, seen)
    assert {pk: node.started_at for pk, node in rows.items()} == started
    assert {node.kind for node in rows.values()} == {NodeKind.WEB}  # the only kind that registered
    ContentType.objects.clear_cache()
    moved = ContentType.objects.get(pk=old_type.pk)
    assert (moved.app_label, moved.model_class()) == ("nodes", Node)
    assert Permission.objects.get(pk=permission.pk).content_type_id == moved.pk


def test_tunnels_lose_their_heartbeat_column_and_nothing_else():
    owner = make_user("poweruser")
    connection_id = make_connection(owner).pk
    old_apps = migrate(BEFORE)
    try:
        OldTunnel = old_apps.get_model("connections", "Tunnel")
        OldTunnel.objects.create(connection_id=connection_id, local_port=40001, remote_host="db", remote_port=5432,
                                 state="up", node="worker-1", seen_at=timezone.now(), bytes_in=7)
    finally:
        migrate()

    tunnel = Tunnel.objects.get()
    assert (tunnel.local_port, tunnel.state, tunnel.node, tunnel.bytes_in) == (40001, "up", "worker-1", 7)
    assert "seen_at" not in {field.name for field in Tunnel._meta.get_fields()}
