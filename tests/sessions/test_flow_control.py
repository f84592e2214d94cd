"""Flow control on the terminal websocket, against a real OpenSSH sshd: reading from the target
pauses while the owner has not drawn enough, and only acknowledging a mark it has read counts.

A client that claims to have drawn bytes it never read (a byte count, a made-up mark) must not
keep output flowing into a socket nobody reads: the node's write buffers would grow without end.
"""

import asyncio

import pytest
from asgiref.sync import async_to_sync

from sessions.runtime.node import NodeRuntime
from sessions.services.sessions import create_session, rotate_share_key
from tests.factories import make_user
from tests.sessions.helpers import Terminal

pytestmark = pytest.mark.django_db(transaction=True)

FLOOD = "head -c 30000000 /dev/zero | tr '\\0' A; echo; echo FLOOD-$((2*3))-DONE\n"


def ssh_session(owner, sshd, **options):
    session, _ = create_session(
        actor=owner, session_type="ssh", host=sshd.host, port=sshd.port, username=sshd.user, password=sshd.password,
        recording_enabled=False, **options,
    )
    return session


def test_an_owner_who_draws_nothing_pauses_the_target_until_it_catches_up(sshd, settings):
    settings.SESSION_HIGH_WATER = 512 * 1024
    settings.SESSION_LOW_WATER = 256 * 1024
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        held = NodeRuntime.get().sessions[str(session.pk)]
        terminal.acknowledges = False
        await terminal.type(FLOOD)
        await asyncio.sleep(2)  # nothing read, nothing acknowledged
        paused_at = held.bytes_out
        await asyncio.sleep(1)
        assert held.paused and held.bytes_out == paused_at
        assert paused_at < 4 * settings.SESSION_HIGH_WATER, paused_at
        await terminal.control(type="ack", bytes=10**15)  # a byte count proves nothing
        await terminal.control(type="ack", mark="0" * 16)  # nor a mark it never read
        await asyncio.sleep(0.5)
        assert held.paused and held.bytes_out == paused_at
        terminal.acknowledges = True  # reads what waited, naming each mark: output flows again
        await terminal.until_output("FLOOD-6-DONE", timeout=60)
        assert held.bytes_out > 30_000_000
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()


def test_a_watcher_claiming_to_draw_what_it_never_read_is_let_go(sshd, settings):
    settings.SESSION_HIGH_WATER = 512 * 1024  # the owner here pauses long before it would be let go
    settings.SESSION_LOW_WATER = 256 * 1024
    settings.SESSION_VIEWER_MAX_BEHIND = 2 * 1024 * 1024
    owner, watcher = make_user("poweruser"), make_user("operator")
    session = ssh_session(owner, sshd)
    key = rotate_share_key(actor=owner, session=session, share_mode="read-only")

    async def scenario():
        mine = await Terminal.open(session.pk, owner)
        await mine.until_event("status", state="active")
        theirs = await Terminal.open(session.pk, watcher, share_key=key)
        await theirs.until_event("status", state="active")
        theirs.acknowledges = False
        await mine.type(FLOOD)
        flooding = asyncio.ensure_future(mine.until_output("FLOOD-6-DONE", timeout=60))
        for _ in range(200):  # bounded: claims of having drawn everything, without reading
            if flooding.done():
                break
            await theirs.control(type="ack", bytes=10**15)
            await theirs.control(type="ack", mark="f" * 16)
            await asyncio.sleep(0.02)
        await flooding  # the owner, who reads, gets everything
        ended = await theirs.until_event("ended", timeout=10)
        assert "too far behind" in ended["message"]
        await theirs.until(lambda t: t.closed, timeout=10)
        assert len(theirs.output) < 30_000_000
        await mine.type("exit\n")
        await mine.until_event("ended")

    async_to_sync(scenario)()
