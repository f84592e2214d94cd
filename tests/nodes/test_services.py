"""The node registry: every kind of node registers and beats the same way, and the reaper tells
every app, once, which nodes died."""

import os
import socket
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from connections.models import Tunnel
from connections.services import tunnels as tunnel_service
from nodes.choices import NodeKind
from nodes.models import Node
from nodes.services import beat, deregister_node, node_alive, reap_dead_nodes, register_node
from nodes.signals import nodes_lost
from sessions.models import Session
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.django_db


def make_node(node_id, kind=NodeKind.WEB, silent_for=0):
    return Node.objects.create(
        pk=node_id, kind=kind, hostname="host-1", pid=1234, seen_at=timezone.now() - timedelta(seconds=silent_for)
    )


@pytest.fixture
def dead():
    return make_node("dead-node", silent_for=settings.NODE_STALE_AFTER + 5)


@pytest.fixture
def alive():
    return make_node("alive-node", silent_for=1)


@pytest.fixture
def heard():
    """The calls of a receiver of nodes_lost (connected for the test only)."""
    calls = []

    def receiver(sender, node_ids, **kwargs):
        calls.append({"node_ids": sorted(node_ids), "rows_still_there": Node.objects.filter(pk__in=node_ids).count()})
        return len(node_ids)

    nodes_lost.connect(receiver, weak=False, dispatch_uid="tests.nodes.heard")
    yield calls, receiver
    nodes_lost.disconnect(dispatch_uid="tests.nodes.heard")


@pytest.mark.parametrize("kind", NodeKind.values)
def test_a_node_of_each_kind_registers_and_beats(kind):
    register_node(f"{kind}-1", kind=kind, pid=4242)
    node = Node.objects.get()
    assert (node.pk, node.kind, node.pid, node.hostname) == (f"{kind}-1", kind, 4242, socket.gethostname())
    assert node_alive(node.pk)
    Node.objects.update(seen_at=timezone.now() - timedelta(seconds=settings.NODE_STALE_AFTER + 1))
    assert not node_alive(node.pk)
    beat(node.pk, kind=kind)
    assert node_alive(node.pk) and Node.objects.get().kind == kind


def test_register_node_records_the_process():
    register_node("web-7", kind=NodeKind.WEB, pid=4242)
    node = Node.objects.get()
    assert (node.pk, node.pid) == ("web-7", 4242) and node_alive("web-7")


def test_registering_again_keeps_the_start(alive):
    register_node(alive.pk, kind=NodeKind.WEB, pid=99)
    node = Node.objects.get()
    assert node.started_at == alive.started_at and node.pid == 99 and node.seen_at > alive.seen_at


def test_node_alive_follows_its_heartbeat(dead, alive):
    assert node_alive(alive.pk) and not node_alive(dead.pk)
    assert not node_alive("never-registered")
    beat(dead.pk, kind=NodeKind.WEB)
    assert node_alive(dead.pk)


def test_beat_of_a_reaped_node_registers_it_again_as_what_it_is():
    make_node("worker-1", kind=NodeKind.WORKER, silent_for=settings.NODE_STALE_AFTER + 5)
    reap_dead_nodes()
    assert not Node.objects.exists()
    beat("worker-1", kind=NodeKind.WORKER)  # the node was only slow: it comes back rather than stay unknown
    node = Node.objects.get()
    assert node_alive("worker-1") and node.kind == NodeKind.WORKER and node.pid == os.getpid()


def test_deregistered_node_is_gone(alive):
    deregister_node(alive.pk)
    deregister_node(alive.pk)  # twice is harmless
    assert not Node.objects.exists() and not node_alive(alive.pk)


def test_reap_tells_the_apps_once_then_forgets_the_dead_nodes(dead, alive, heard):
    calls, receiver = heard
    worker = make_node("dead-worker", kind=NodeKind.WORKER, silent_for=settings.NODE_STALE_AFTER + 5)
    answers = reap_dead_nodes()
    assert calls == [{"node_ids": sorted([dead.pk, worker.pk]), "rows_still_there": 2}]
    assert answers[receiver] == 2
    assert list(Node.objects.values_list("pk", flat=True)) == [alive.pk]
    assert reap_dead_nodes() == {}  # nothing dead any more: nothing sent
    assert len(calls) == 1


def test_reap_of_living_nodes_sends_nothing(alive, heard):
    calls, _ = heard
    assert reap_dead_nodes() == {}
    assert calls == [] and Node.objects.filter(pk=alive.pk).exists()


def test_stale_after_can_be_given(alive, heard):
    calls, _ = heard
    reap_dead_nodes(stale_after=0)
    assert calls[0]["node_ids"] == [alive.pk] and not Node.objects.exists()


def test_a_failing_app_undoes_the_reap_for_the_next_one(dead, heard):
    """The apps' changes and the deletion commit together, or none of them does."""
    calls, _ = heard

    def failing(sender, node_ids, **kwargs):
        Node.objects.filter(pk__in=node_ids).update(pid=1)  # stands for an app's own change
        raise RuntimeError("the database went away")

    nodes_lost.connect(failing, weak=False, dispatch_uid="tests.nodes.failing")
    try:
        with pytest.raises(RuntimeError):
            reap_dead_nodes()
    finally:
        nodes_lost.disconnect(dispatch_uid="tests.nodes.failing")
    assert Node.objects.get().pid == dead.pid
    reap_dead_nodes()
    assert [call["node_ids"] for call in calls] == [[dead.pk], [dead.pk]]
    assert not Node.objects.exists()


def test_one_reap_ends_the_work_of_every_app(dead, monkeypatch):
    """Whichever task finds the dead node first, its sessions and its tunnels both end."""
    queued = []
    monkeypatch.setattr(tunnel_service, "_send", lambda task, connection_id: queued.append((task, connection_id)))
    owner = make_user("poweruser")
    session = Session.objects.create(owner=owner, session_type="ssh", host="10.0.0.1", port=22, status="active",
                                     node=dead.pk)
    connection = make_connection(owner)
    tunnel = Tunnel.objects.create(connection=connection, local_port=40000, remote_host="127.0.0.1", remote_port=22,
                                   state="up", node=dead.pk)
    reap_dead_nodes()
    session.refresh_from_db()
    tunnel.refresh_from_db()
    assert session.status == "lost"
    assert (tunnel.state, tunnel.node) == ("starting", "")
    assert queued == [("start_tunnels", connection.pk)]
