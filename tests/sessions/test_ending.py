"""A session ends whatever becomes of the websockets attached to it.

Daphne kills a consumer still busy 10 s after its browser left (as 200 sessions terminated at
once did, their ends queued behind the one database thread), and a notice can find the
receiving channel full. Neither may leave a target shell running with nobody attached.
"""

import asyncio
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from rest_framework.test import APIClient

from recordings.models import Recording
from sessions.models import Session, Viewer
from sessions.runtime import attachments, messages
from sessions.services import lifecycle
from sessions.services.sessions import create_session
from tests.factories import make_user
from tests.sessions.helpers import Terminal

pytestmark = pytest.mark.django_db(transaction=True)


def ssh_session(owner, target):
    session, _ = create_session(
        actor=owner, session_type="ssh", host=target.host, port=target.port, username=target.user,
        password=target.password,
    )
    return session


async def row(session):
    return await database_sync_to_async(lambda: Session.objects.get(pk=session.pk))()


async def until_over(session, seconds=10):
    """The session's row once it is no longer live, and its recording's."""
    for _ in range(int(seconds * 10)):
        current = await row(session)
        if current.status not in ("pending", "connecting", "active"):
            recording = await database_sync_to_async(lambda: Recording.objects.filter(session=session).first())()
            return current, recording
        await asyncio.sleep(0.1)
    raise AssertionError(f"the session is still {current.status} after {seconds} s")


async def killed(terminal):
    """What daphne does to a consumer that outstays its close timeout."""
    terminal.ws.future.cancel()
    await asyncio.gather(terminal.ws.future, return_exceptions=True)


async def left_to_end(session, connected=True):
    """A session nobody is attached to any more: ended after the owner's grace, its recording
    closed, no viewer left. ``connected=None``: it may have ended before it connected (then it
    has no recording)."""
    ended, recording = await until_over(session)
    assert ended.status == "ended"
    if connected or recording is not None:
        assert recording.ended_at is not None
    assert not await database_sync_to_async(Viewer.objects.filter(session=session).exists)()


def test_a_killed_consumer_still_starts_its_owners_grace_period(sshd, settings):
    settings.SESSION_RECONNECT_GRACE = 0.5
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        await killed(terminal)
        await left_to_end(session)

    async_to_sync(scenario)()


def test_a_consumer_killed_while_it_opens_its_session_leaves_nothing_running(sshd, settings, monkeypatch):
    """Killed mid-attach, it left the session it had claimed registered on the node and never
    started or ended: `connecting` for good."""
    settings.SESSION_RECONNECT_GRACE = 0.5
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    real = lifecycle.attach_viewer
    attaching = threading.Event()

    def slow_attach_viewer(**kwargs):  # the database thread is still busy when the kill comes
        attaching.set()
        time.sleep(0.5)
        return real(**kwargs)

    monkeypatch.setattr(lifecycle, "attach_viewer", slow_attach_viewer)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        assert await asyncio.to_thread(attaching.wait, 10)
        await killed(terminal)
        # Killed before or after its session began to connect: either way it ends.
        await left_to_end(session, connected=None)

    async_to_sync(scenario)()


def test_a_terminate_is_carried_out_though_its_consumer_is_killed(sshd, monkeypatch):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    slow_start = asyncio.Event()
    real = attachments._terminate

    async def slow_terminate(*args):  # still waiting for the database thread when the kill comes
        slow_start.set()
        await asyncio.sleep(0.5)
        return await real(*args)

    monkeypatch.setattr(attachments, "_terminate", slow_terminate)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        await terminal.control(type="terminate")
        await asyncio.wait_for(slow_start.wait(), 10)
        await killed(terminal)
        # The owner's reconnect grace is 60 s: only the terminate can end it this soon.
        ended, recording = await until_over(session, seconds=5)
        assert ended.status == "terminated" and owner.email in ended.status_message
        assert recording.ended_at is not None

    async_to_sync(scenario)()


def test_a_terminate_whose_notice_finds_the_channel_full_is_carried_out_by_the_sweep(sshd, monkeypatch):
    owner = make_user("poweruser")
    admin = make_user("admin")
    session = ssh_session(owner, sshd)

    def full(*args):
        raise ChannelFull()

    monkeypatch.setattr(messages, "notify_terminated", full)
    api = APIClient()
    api.force_authenticate(admin)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        answer = await database_sync_to_async(api.delete)(f"/api/sessions/{session.pk}")
        assert answer.status_code == 200 and answer.json()["status"] == "terminated", answer.content
        ended = await terminal.until_event("ended")  # the sweep: every SESSION_SWEEP seconds
        assert ended["status"] == "terminated" and admin.email in ended["message"]

    async_to_sync(scenario)()
    assert Recording.objects.get(session=session).ended_at is not None
