"""One session across two web nodes: two daphne processes sharing PostgreSQL and Redis.

Why: CONTRACT.md promises that a session opened through one node can be watched and ended
through another. Only separate processes prove it: the session's target connection lives on
its home node, and everything another node does with it (typing, watching, terminating)
crosses the Redis channel layer, against a real sshd.
"""

import asyncio
import json
import socket
import urllib.request
from contextlib import ExitStack
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings

from nodes.models import Node
from recordings.models import Recording
from sessions import tasks
from sessions.models import Session, Viewer
from tests.factories import make_user, make_user_token
from tests.processes import daphne_process
from tests.sessions.helpers import NetTerminal

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.REDIS_URL or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="two nodes need PostgreSQL and Redis (PAM_DATABASE_URL, PAM_REDIS_URL): the embedded "
        "in-memory channel layer cannot cross processes",
    ),
]


def api(base, method, path, token, body=None):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, json.loads(response.read() or b"null")


def node_of(process):
    """The prefix of the node ids (sessions.runtime.node) a daphne process registers."""
    return f"{socket.gethostname()}-{process.pid}-"


def open_session(base, token, sshd):
    """POST /api/sessions through the node at ``base``; the session id."""
    target = {"session_type": "ssh", "hostname": sshd.host, "port": sshd.port,
              "username": sshd.user, "password": sshd.password}
    status, created = api(base, "POST", "/api/sessions", token, target)
    assert status == 201, created
    return created["session_id"]


def tokens(*roles):
    """A user of each role, and a personal token for each."""
    users = [make_user(role) for role in roles]
    return users, [make_user_token(user)[1] for user in users]


@pytest.fixture
def nodes(tmp_path):
    """Two daphne processes, A and B, on the same database and Redis."""
    with ExitStack() as stack:
        yield [stack.enter_context(daphne_process(log=tmp_path / f"daphne-{n}.log")) for n in "ab"]


@pytest.mark.parametrize("terminate_via", ["other", "home"])
def test_session_typed_watched_and_terminated_across_nodes(nodes, sshd, terminate_via):
    """Created through A, opened through B (its home), typed into and watched through both,
    ended through A (``other``) or B (``home``): every window on either node sees it all."""
    a, b = nodes
    (owner, admin), (owner_token, admin_token) = tokens("poweruser", "admin")
    session_id = open_session(a.base, owner_token, sshd)

    async def scenario():
        # The owner opens it through B: B holds the target connection (its home).
        owner_b = await NetTerminal.open(b.base, session_id, owner_token)
        await owner_b.until_event("status", state="active")
        home = await database_sync_to_async(lambda: Session.objects.get(pk=session_id).node)()
        assert home.startswith(node_of(b))
        await owner_b.type("echo on-b-$((6*7))\n")
        await owner_b.until_output("on-b-42")

        # An admin watches through A: the recent output replays, new output crosses B -> A.
        admin_a = await NetTerminal.open(a.base, session_id, admin_token)
        assert (await admin_a.until_event("access"))["access"] == "supervisor"
        await admin_a.until_event("status", state="active")
        await admin_a.until_output("on-b-42")
        await owner_b.type("echo from-b-$((7*7))\n")
        await admin_a.until_output("from-b-49")

        # Input crosses A -> B: the owner's second window opens through A. A supervisor's keys
        # go nowhere, whichever node they reach.
        owner_a = await NetTerminal.open(a.base, session_id, owner_token)
        await owner_a.until_event("status", state="active")
        await admin_a.type("echo supervisor-typed\n")
        await asyncio.sleep(0.3)
        await owner_a.type("echo from-a-$((8*8))\n")
        for terminal in (owner_a, owner_b, admin_a):
            await terminal.until_output("from-a-64")
        assert b"supervisor-typed" not in owner_b.output

        viewers = await database_sync_to_async(
            lambda: sorted((v.access, "a" if v.node.startswith(node_of(a)) else "b")
                           for v in Viewer.objects.filter(session_id=session_id))
        )()
        assert viewers == [("owner", "a"), ("owner", "b"), ("supervisor", "a")]

        # The admin ends it through one node; every window, on both nodes, is told and closed.
        via = a if terminate_via == "other" else b
        status, body = await asyncio.to_thread(
            api, via.base, "DELETE", f"/api/sessions/{session_id}", admin_token
        )
        assert status == 200 and body["status"] == "terminated"
        for terminal in (owner_b, owner_a, admin_a):
            ended = await terminal.until_event("ended")
            assert ended["status"] == "terminated", ended
            await terminal.until_closed()

    async_to_sync(scenario)()

    session = Session.objects.get(pk=session_id)
    assert session.status == "terminated" and session.ended_at and session.ended_by == admin
    assert session.bytes_in > 0 and session.bytes_out > 0  # the home node wrote its end of the trail
    assert not Viewer.objects.filter(session=session).exists()
    assert Recording.objects.get(session=session).ended_at is not None


def test_a_new_share_link_disconnects_holders_of_the_old_one_on_the_other_node(nodes, sshd):
    """The session lives on B; a collaborator watches through A with the link. The owner makes a
    new link through A: B hears it and has A close the collaborator's window at once."""
    a, b = nodes
    (owner, colleague), (owner_token, colleague_token) = tokens("poweruser", "operator")
    session_id = open_session(a.base, owner_token, sshd)

    async def scenario():
        owner_b = await NetTerminal.open(b.base, session_id, owner_token)
        await owner_b.until_event("status", state="active")
        status, body = await asyncio.to_thread(
            api, a.base, "POST", f"/api/sessions/{session_id}/share", owner_token, {"share_mode": "read-write"}
        )
        assert status == 200
        key = body["share_url"].partition("#key=")[2]
        colleague_a = await NetTerminal.open(a.base, session_id, colleague_token, share_key=key)
        assert (await colleague_a.until_event("access"))["access"] == "collaborator"
        await colleague_a.until_event("status", state="active")
        await colleague_a.type("echo typed-on-a-$((3*3))\n")
        await owner_b.until_output("typed-on-a-9")

        status, _ = await asyncio.to_thread(
            api, a.base, "POST", f"/api/sessions/{session_id}/share", owner_token, {"share_mode": "read-only"}
        )
        assert status == 200
        ended = await colleague_a.until_event("ended", timeout=5)
        assert "share link" in ended["message"]
        await colleague_a.until_closed(timeout=5)
        await owner_b.type("echo owner-stays-$((4*4))\n")
        await owner_b.until_output("owner-stays-16")
        await owner_b.type("exit\n")
        await owner_b.until_event("ended")

    async_to_sync(scenario)()


def test_a_watcher_on_the_other_node_sees_the_last_output_before_the_end(nodes, sshd):
    """Output written just before the target closes still crosses to the other node, ahead of
    the ``ended`` event."""
    a, b = nodes
    (owner, admin), (owner_token, admin_token) = tokens("poweruser", "admin")
    session_id = open_session(a.base, owner_token, sshd)

    async def scenario():
        owner_b = await NetTerminal.open(b.base, session_id, owner_token)
        await owner_b.until_event("status", state="active")
        admin_a = await NetTerminal.open(a.base, session_id, admin_token)
        await admin_a.until_event("status", state="active")
        await owner_b.type("seq -f 'last-line-%g' 1 2000; exit\n")
        ended = await admin_a.until_event("ended")
        assert ended["status"] == "ended"
        assert b"last-line-2000" in admin_a.output

    async_to_sync(scenario)()


def test_an_owner_on_the_other_node_who_stops_reading_pauses_the_target_instead_of_being_dropped(nodes, sshd):
    """The owner's only window is on A, the session lives on B. B counts what it sends A's way
    and A tells it what the window has drawn: while the window reads nothing, B stops reading
    from the target (30 MB would have put the window past the 16 MiB anyone may fall behind,
    however late A's word arrives), and the window gets all of it once it reads."""
    a, b = nodes
    _, (owner_token,) = tokens("poweruser")
    session_id = open_session(a.base, owner_token, sshd)

    async def scenario():
        owner_b = await NetTerminal.open(b.base, session_id, owner_token)
        await owner_b.until_event("status", state="active")
        owner_a = await NetTerminal.open(a.base, session_id, owner_token)
        await owner_a.until_event("status", state="active")
        await owner_b.close()
        owner_a.acknowledges = False
        await owner_a.type("head -c 30000000 /dev/zero | tr '\\0' A; echo; echo FL-$((2*3))-OK\n")
        await asyncio.sleep(8)  # nothing read, nothing acknowledged
        stored = await database_sync_to_async(lambda: Session.objects.get(pk=session_id).bytes_out)()
        assert stored < 16 * 2**20, stored  # B saves its counters every 5 s
        owner_a.acknowledges = True  # reads what waited, naming each mark: B reads on
        await owner_a.until(lambda t: b"FL-6-OK" in t.output[-4096:], timeout=90)
        assert not owner_a.closed
        await owner_a.type("exit\n")
        await owner_a.until_event("ended")

    async_to_sync(scenario)()


def test_watchers_on_a_surviving_node_are_told_when_the_home_node_dies(nodes, sshd):
    """The home node is killed (-9): it can tell no one. Once the reaper finds it stale, the
    windows attached through the surviving node get ``ended`` (lost) and are closed, rather
    than showing a frozen terminal, and accepting keys, forever."""
    a, b = nodes
    _, (owner_token, admin_token) = tokens("poweruser", "admin")
    session_id = open_session(a.base, owner_token, sshd)

    async def scenario():
        owner_b = await NetTerminal.open(b.base, session_id, owner_token)  # B is the home
        await owner_b.until_event("status", state="active")
        admin_a = await NetTerminal.open(a.base, session_id, admin_token)
        owner_a = await NetTerminal.open(a.base, session_id, owner_token)
        await owner_a.type("echo before-$((5*5))\n")
        for terminal in (admin_a, owner_a):
            await terminal.until_output("before-25")

        b.kill()
        await asyncio.to_thread(b.wait)
        await owner_b.until_closed()

        def reap():
            # B beats no more; let its row age past NODE_STALE_AFTER, then run the beat's task.
            node = Node.objects.get(pk=Session.objects.get(pk=session_id).node)
            node.seen_at -= timedelta(seconds=settings.NODE_STALE_AFTER + 1)
            node.save(update_fields=["seen_at"])
            return tasks.reap_lost_sessions()

        assert await database_sync_to_async(reap)() == 1
        for terminal in (admin_a, owner_a):
            ended = await terminal.until_event("ended")
            assert ended["status"] == "lost", ended
            await terminal.until_closed()

    async_to_sync(scenario)()
    session = Session.objects.get(pk=session_id)
    assert session.status == "lost" and session.ended_at is not None
    assert not Viewer.objects.filter(session=session).exists()
