"""Ending the sessions of a node that stopped beating (the registry itself: tests/nodes/)."""

import json
import os
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.models import AuditEvent
from nodes.choices import NodeKind
from nodes.models import Node
from sessions import tasks
from sessions.models import Session, Viewer
from sessions.runtime.node import NodeRuntime
from sessions.services import nodes
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def make_node(node_id, silent_for=0):
    return Node.objects.create(
        pk=node_id, kind=NodeKind.WEB, hostname="web-1", pid=1234, seen_at=timezone.now() - timedelta(seconds=silent_for)
    )


def make_session(status="active", node="", age=0, **fields):
    return Session.objects.create(
        owner=make_user("operator"),
        session_type="ssh",
        host="10.0.0.1",
        port=22,
        username="root",
        status=status,
        node=node,
        secrets=json.dumps({"password": "pw"}),
        created_at=timezone.now() - timedelta(seconds=age),
        **fields,
    )


def make_viewer(session, node, n=[0]):
    n[0] += 1
    return Viewer.objects.create(
        session=session, channel_name=f"chan-{n[0]}", user=session.owner, access="owner", node=node
    )


@pytest.fixture
def dead():
    return make_node("dead-node", silent_for=settings.NODE_STALE_AFTER + 5)


@pytest.fixture
def alive():
    return make_node("alive-node", silent_for=1)


@pytest.mark.parametrize("status", ["pending", "connecting", "active"])
def test_live_sessions_of_a_dead_node_are_lost(dead, status):
    session = make_session(status, node=dead.pk)
    assert nodes.reap_lost_sessions() == 1
    session.refresh_from_db()
    assert session.status == "lost" and session.ended_at is not None
    assert session.secrets == ""
    assert dead.pk in session.status_message


def test_old_live_sessions_of_a_node_the_registry_does_not_know_are_lost(alive):
    """A node row deleted by hand (or reaped in a blip) must not leave its sessions live forever."""
    old = make_session(node="vanished-node", age=settings.NODE_STALE_AFTER + 5)
    its_young_one = make_session(node="vanished-node", age=0)
    young = make_session(node="registering-node", age=0)  # may be a node registering again
    kept = make_session(node=alive.pk, age=settings.NODE_STALE_AFTER + 5)
    unclaimed = make_session("pending", age=settings.NODE_STALE_AFTER + 5)
    assert nodes.reap_lost_sessions() == 2
    for session in (old, its_young_one):
        session.refresh_from_db()
        assert session.status == "lost" and session.secrets == "" and "vanished-node" in session.status_message
    for session in (young, kept, unclaimed):
        session.refresh_from_db()
        assert session.status in ("active", "pending") and session.ended_at is None
    assert nodes.reap_lost_sessions() == 0


def test_lost_session_is_audited(dead):
    session = make_session(node=dead.pk)
    nodes.reap_lost_sessions()
    event = AuditEvent.objects.get(action=AuditAction.SESSION_ENDED)
    assert event.object_name == str(session.pk) and dead.pk in event.details


def test_sessions_of_a_living_node_are_left_alone(dead, alive):
    session = make_session(node=alive.pk)
    assert nodes.reap_lost_sessions() == 0
    session.refresh_from_db()
    assert session.status == "active" and session.secrets and session.ended_at is None
    assert Node.objects.filter(pk=alive.pk).exists()


@pytest.mark.parametrize("status", ["ended", "terminated", "failed"])
def test_finished_sessions_of_a_dead_node_stay_as_they_were(dead, status):
    session = make_session(status, node=dead.pk, status_message="Closed by the target.")
    assert nodes.reap_lost_sessions() == 0
    session.refresh_from_db()
    assert session.status == status and session.status_message == "Closed by the target."


def test_dead_node_and_its_viewers_are_deleted(dead, alive):
    on_dead = make_session(node=dead.pk)
    on_alive = make_session(node=alive.pk)
    make_viewer(on_dead, dead.pk)
    watching_from_dead = make_viewer(on_alive, dead.pk)
    kept = make_viewer(on_alive, alive.pk)
    nodes.reap_lost_sessions()
    assert list(Node.objects.values_list("pk", flat=True)) == [alive.pk]
    assert list(Viewer.objects.all()) == [kept]
    assert not Viewer.objects.filter(pk=watching_from_dead.pk).exists()


def test_pending_session_never_opened_expires(settings):
    old = make_session("pending", age=settings.SESSION_PENDING_TTL + 60)
    assert nodes.reap_lost_sessions() == 1
    old.refresh_from_db()
    assert old.status == "ended" and old.ended_at is not None and old.secrets == ""


def test_recent_pending_session_is_kept(settings):
    recent = make_session("pending", age=settings.SESSION_PENDING_TTL - 60)
    assert nodes.reap_lost_sessions() == 0
    recent.refresh_from_db()
    assert recent.status == "pending" and recent.secrets


def test_old_session_held_by_a_living_node_is_kept(alive, settings):
    held = make_session("active", node=alive.pk, age=settings.SESSION_PENDING_TTL * 10)
    assert nodes.reap_lost_sessions() == 0
    held.refresh_from_db()
    assert held.status == "active"


def test_reaping_twice_is_harmless(dead, settings):
    lost = make_session(node=dead.pk)
    expired = make_session("pending", age=settings.SESSION_PENDING_TTL + 60)
    assert nodes.reap_lost_sessions() == 2
    ended_at = {s.pk: s.ended_at for s in Session.objects.all()}
    assert nodes.reap_lost_sessions() == 0
    assert {s.pk: s.ended_at for s in Session.objects.all()} == ended_at
    assert Session.objects.get(pk=lost.pk).status == "lost"
    assert Session.objects.get(pk=expired.pk).status == "ended"
    assert AuditEvent.objects.filter(action=AuditAction.SESSION_ENDED).count() == 1


def test_stale_after_can_be_given(alive):
    session = make_session(node=alive.pk)
    assert nodes.reap_lost_sessions(stale_after=0) == 1
    session.refresh_from_db()
    assert session.status == "lost" and not Node.objects.exists()


def test_task_reaps_and_returns_how_many(dead):
    make_session(node=dead.pk)
    assert tasks.reap_lost_sessions.apply().get() == 1
    assert Session.objects.get().status == "lost"


def test_task_is_scheduled():
    tasks_scheduled = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    entry = tasks_scheduled["sessions.tasks.reap_lost_sessions"]
    assert 0 < entry["schedule"] <= settings.NODE_STALE_AFTER
    assert tasks.reap_lost_sessions.name == "sessions.tasks.reap_lost_sessions"


def test_lost_session_lets_go_of_all_its_watchers_and_closes_its_recording(dead, alive, tmp_path, settings):
    """A dead node closes nothing: the reaper does it for the session, on whichever node."""
    from recordings.models import Recording

    settings.RECORDINGS_DIR = tmp_path
    session = make_session(node=dead.pk)
    make_viewer(session, dead.pk)
    make_viewer(session, alive.pk)  # watching through a node that lives on
    (tmp_path / "lost.cast").write_text('{"version": 2}\n[0.5, "o", "flushed"]\n')
    recording = Recording.objects.create(name="lost.cast", session=session)
    assert nodes.reap_lost_sessions() == 1
    assert not Viewer.objects.exists()
    recording.refresh_from_db()
    assert recording.ended_at == Session.objects.get(pk=session.pk).ended_at
    assert recording.size == (tmp_path / "lost.cast").stat().st_size


@pytest.mark.django_db(transaction=True)
def test_the_web_node_registers_in_the_node_registry():
    async def start():
        runtime = NodeRuntime.get()
        await runtime.ensure_started()
        return runtime.node_id

    node = Node.objects.get(pk=async_to_sync(start)())
    assert node.kind == NodeKind.WEB and node.pid == os.getpid()
