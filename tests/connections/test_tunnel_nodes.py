"""Tunnels whose worker is dead or unknown to the node registry (nodes.Node), without a worker:
the rows and the start tasks queued. The real workers' side is in test_tunnels.py."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from connections import tasks
from connections.models import Tunnel
from connections.services import tunnels as tunnel_service
from connections.services.tunnels import finish_lost_stops, reap_lost_tunnels
from nodes.choices import NodeKind
from nodes.models import Node
from sessions.services.nodes import reap_lost_sessions
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.django_db

DEAD_FOR = settings.NODE_STALE_AFTER + 5


@pytest.fixture
def queued(monkeypatch):
    """The start tasks the services queue (none runs)."""
    sent = []
    monkeypatch.setattr(tunnel_service, "_send", lambda task, connection_id: sent.append((task, connection_id)))
    return sent


def make_worker(node_id, silent_for=0):
    return Node.objects.create(pk=node_id, kind=NodeKind.WORKER, hostname="worker-host", pid=4321,
                               seen_at=timezone.now() - timedelta(seconds=silent_for))


def make_tunnel(node, state="up", port=40000):
    connection = make_connection(make_user("poweruser"))
    return Tunnel.objects.create(connection=connection, local_port=port, remote_host="127.0.0.1", remote_port=22,
                                 state=state, node=node, connections_open=3)


@pytest.mark.parametrize("state", ["starting", "up", "down"])
def test_tunnel_of_a_dead_worker_waits_for_another(state, queued):
    make_worker("dead-worker", silent_for=DEAD_FOR)
    tunnel = make_tunnel("dead-worker", state)
    assert reap_lost_tunnels() == 1
    tunnel.refresh_from_db()
    assert (tunnel.state, tunnel.node, tunnel.connections_open) == ("starting", "", 0)
    assert "worker stopped answering" in tunnel.message
    assert queued == [("start_tunnels", tunnel.connection_id)]
    assert not Node.objects.exists()


def test_stop_asked_of_a_dead_worker_is_finished(queued):
    make_worker("dead-worker", silent_for=DEAD_FOR)
    tunnel = make_tunnel("dead-worker", "stopping")
    assert reap_lost_tunnels() == 1
    tunnel.refresh_from_db()
    assert tunnel.state == "stopped" and tunnel.stopped_at is not None and queued == []


def test_tunnels_of_a_living_worker_are_left_alone(queued):
    make_worker("worker", silent_for=1)
    up, stopping = make_tunnel("worker", "up", 40000), make_tunnel("worker", "stopping", 40001)
    assert reap_lost_tunnels() == 0
    assert [t.state for t in Tunnel.objects.order_by("local_port")] == ["up", "stopping"]
    assert finish_lost_stops() == 0 and queued == []
    assert Node.objects.filter(pk="worker").exists() and {up.node, stopping.node} == {"worker"}


def test_tunnel_of_a_node_unknown_to_the_registry_is_reopened(queued):
    """A worker reaped already, or one from before the registry: nobody beats for its tunnel."""
    tunnel = make_tunnel("never-registered")
    assert reap_lost_tunnels() == 1
    tunnel.refresh_from_db()
    assert (tunnel.state, tunnel.node) == ("starting", "")
    assert queued == [("start_tunnels", tunnel.connection_id)]


def test_stop_of_a_node_unknown_to_the_registry_is_finished_by_the_stop_task(queued):
    tunnel = make_tunnel("never-registered", "stopping")
    assert tasks.stop_tunnels(tunnel.connection_id) == 1
    tunnel.refresh_from_db()
    assert tunnel.state == "stopped"


def test_the_sessions_reaper_finding_the_dead_worker_first_hands_its_tunnels_back(queued):
    make_worker("dead-worker", silent_for=DEAD_FOR)
    tunnel = make_tunnel("dead-worker")
    assert reap_lost_sessions() == 0  # no session ended; the tunnel moved all the same
    tunnel.refresh_from_db()
    assert (tunnel.state, tunnel.node) == ("starting", "")
    assert queued == [("start_tunnels", tunnel.connection_id)]
    assert reap_lost_tunnels() == 0  # nothing left to do


def test_reaping_twice_is_harmless(queued):
    make_worker("dead-worker", silent_for=DEAD_FOR)
    make_tunnel("dead-worker")
    assert reap_lost_tunnels() == 1
    assert reap_lost_tunnels() == 0
    assert len(queued) == 1


def test_task_is_scheduled():
    scheduled = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert 0 < scheduled["connections.tasks.reap_lost_tunnels"]["schedule"] <= settings.NODE_STALE_AFTER
    assert tasks.reap_lost_tunnels.name == "connections.tasks.reap_lost_tunnels"
