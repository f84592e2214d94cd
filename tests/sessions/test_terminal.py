"""Terminal sessions end to end, against real OpenSSH sshd and Debian telnetd on loopback.

The websocket is driven in-process (Channels' communicator) through the real ASGI stack:
token authentication, the consumer, the live session, the OpenSSH client or telnetlib3, the target.
"""

import asyncio
import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from connections.models import JumpHop
from recordings.models import Recording
from sessions.models import Session, Viewer
from sessions.services.lifecycle import terminate_session
from sessions.services.sessions import connect_connection, create_session
from targets.models import KnownHost
from targets.services.hostkeys import accept_host_key
from tests.factories import make_connection, make_user
from tests.sessions.helpers import Terminal
from tests.targets import asciinema_cat

pytestmark = pytest.mark.django_db(transaction=True)


def operator_session(target):
    """An operator and their session on a connection shared with them (operators open no ad-hoc ones)."""
    operator = make_user("operator")
    conn = make_connection(
        make_user("poweruser"), host=target.host, port=target.port, username=target.user, password=target.password
    )
    conn.shares.create(user=operator)
    session, _ = connect_connection(actor=operator, connection=conn)
    return operator, session


def ssh_session(owner, target, **extra):
    fields = {"host": target.host, "port": target.port, "username": target.user, "password": target.password}
    fields.update(extra)
    session, key = create_session(actor=owner, session_type="ssh", **fields)
    return session, key


async def run_command(terminal, command, expect):
    await terminal.until_event("status", state="active")
    await terminal.type(command + "\n")
    await terminal.until_output(expect)


def test_password_session_runs_a_command_and_is_recorded(sshd):
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await run_command(terminal, "echo hello-$((6*7))", "hello-42")
        await terminal.control(type="resize", cols=120, rows=40)
        await terminal.type("stty size\n")
        await terminal.until_output("40 120")
        await terminal.type("exit\n")
        ended = await terminal.until_event("ended")
        assert ended["status"] == "ended"
        await terminal.close()

    async_to_sync(scenario)()
    session.refresh_from_db()
    assert session.status == "ended" and session.started_at and session.ended_at
    assert session.bytes_in > 0 and session.bytes_out > 0
    shell = session.trail_channels.get()
    assert (shell.kind, shell.bytes_in, shell.bytes_out) == ("shell", session.bytes_in, session.bytes_out)
    assert session.secrets == ""  # credentials of the session are wiped once used
    recording = Recording.objects.get(session=session)
    path = settings.RECORDINGS_DIR / recording.name
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] == 100 and header["height"] == 30
    events = [json.loads(line) for line in lines[1:]]
    # No input events: typed keys are stored nowhere. Each Enter is a marker with no text.
    assert {e[1] for e in events} == {"o", "r", "m"}
    assert [e[2] for e in events if e[1] == "m"] == ["", "", ""]  # echo, stty, exit
    assert ["r", "120x40"] in [e[1:] for e in events]
    assert sshd.password not in path.read_text() and sshd.password not in recording.name
    assert "hello-42" in asciinema_cat(path)
    assert recording.size == path.stat().st_size


def test_a_long_session_keeps_flushing_its_recording_and_saving_its_counters(sshd):
    """The recording reaches the disk every second and the trail's counters every few seconds
    for as long as the session lives, not only at its end (a crash loses at most a second)."""
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await run_command(terminal, "echo first-$((2*3))", "first-6")
        await asyncio.sleep(6.5)  # past the first save of the counters
        await terminal.type("echo second-$((3*3))\n")
        await terminal.until_output("second-9")
        await asyncio.sleep(1.5)
        recording = await database_sync_to_async(Recording.objects.get)(session=session.pk)
        on_disk = asciinema_cat(settings.RECORDINGS_DIR / recording.name)
        await asyncio.sleep(5)
        row = await database_sync_to_async(Session.objects.get)(pk=session.pk)
        await terminal.type("exit\n")
        await terminal.until_event("ended")
        return on_disk, row

    on_disk, row = async_to_sync(scenario)()
    assert "second-9" in on_disk  # flushed while the session was still open
    assert row.status == "active" and row.bytes_out > 0 and row.last_activity is not None


def test_private_key_session(sshd, tmp_path):
    import subprocess

    key_file = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    sshd.authorize(key_file.with_suffix(".pub").read_text())
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd, password="", private_key=key_file.read_text())

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await run_command(terminal, "echo key-$((2+2))", "key-4")
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()


def test_ephemeral_keypair_waits_for_continue(sshd):
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd, password="", generate_keypair=True)
    assert session.public_key.startswith("ssh-ed25519 ")

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        banner = await terminal.until_event("banner")
        assert banner["public_key"] == session.public_key
        status = await database_sync_to_async(lambda: Session.objects.get(pk=session.pk).status)()
        assert status == "pending"  # nothing connects before Continue
        sshd.authorize(banner["public_key"])  # what the user does with the key shown
        await terminal.control(type="continue")
        await run_command(terminal, "echo ephemeral-ok", "ephemeral-ok")
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()


def test_two_hop_jump_chain(sshd, jump_sshd):
    owner = make_user("poweruser")
    hops = [
        {"host": "127.0.0.2", "port": jump_sshd.port, "username": jump_sshd.user, "password": jump_sshd.password},
        {"host": "127.0.0.3", "port": jump_sshd.port, "username": jump_sshd.user, "password": jump_sshd.password},
    ]
    before = jump_sshd.log_text()
    session, _ = ssh_session(owner, sshd, jump_hosts=hops)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await run_command(terminal, "echo through-$((1+1))-hops", "through-2-hops")
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()
    log = jump_sshd.log_text()[len(before):]
    # The first hop forwarded to the second, the second to the target.
    assert f"target 127.0.0.3 port {jump_sshd.port}" in log
    assert f"target 127.0.0.1 port {sshd.port}" in log
    session.refresh_from_db()
    assert session.jump_chain == [f"{jump_sshd.user}@127.0.0.2:{jump_sshd.port}", f"{jump_sshd.user}@127.0.0.3:{jump_sshd.port}"]


def test_saved_connection_with_jump_host_keeps_its_credentials_server_side(sshd, jump_sshd):
    owner = make_user("poweruser")
    conn = make_connection(owner, "behind-jump", host=sshd.host, port=sshd.port, username=sshd.user, password=sshd.password)
    JumpHop.objects.create(connection=conn, position=0, host="127.0.0.2", port=jump_sshd.port,
                           username=jump_sshd.user, password=jump_sshd.password)
    operator = make_user("operator")
    conn.shares.create(user=operator)
    session, _ = connect_connection(actor=operator, connection=conn)
    assert session.secrets != "" and sshd.password not in session.secrets  # encrypted marker only

    async def scenario():
        terminal = await Terminal.open(session.pk, operator)
        await run_command(terminal, "echo shared-$((3*3))", "shared-9")
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()


def test_host_key_is_pinned_and_a_change_is_refused_until_accepted(sshd):
    owner = make_user("poweruser")

    def open_and_exit():
        session, _ = ssh_session(owner, sshd)

        async def scenario():
            terminal = await Terminal.open(session.pk, owner)
            event = await terminal.until(
                lambda t: any(e.get("type") in ("ended",) or e.get("state") == "active" for e in t.events)
            )
            if any(e.get("state") == "active" for e in event.events):
                await terminal.type("exit\n")
            await terminal.until_event("ended")

        async_to_sync(scenario)()
        session.refresh_from_db()
        return session

    first = open_and_exit()
    assert first.status == "ended"
    pin = KnownHost.objects.get(address=sshd.host, port=sshd.port, path="")
    sshd.new_host_key()
    sshd.restart()
    try:
        refused = open_and_exit()
        assert refused.status == "failed" and "host key" in refused.status_message
        seen = pin.sightings.get()
        assert seen.fingerprint != pin.fingerprint and seen.seen_by == owner
        accept_host_key(actor=make_user("admin"), sighting=seen)
        assert AuditEvent.objects.filter(action="host_key.accepted").exists()
        assert open_and_exit().status == "ended"
    finally:
        KnownHost.objects.filter(address=sshd.host, port=sshd.port).delete()


def test_read_only_share_watches_but_cannot_type(sshd):
    owner, friend = make_user("poweruser"), make_user("viewer")
    session, key = ssh_session(owner, sshd)

    async def scenario():
        mine = await Terminal.open(session.pk, owner)
        await mine.until_event("status", state="active")
        theirs = await Terminal.open(session.pk, friend, share_key=key)
        assert theirs.accepted
        access = await theirs.until_event("access")
        assert access["access"] == "viewer"
        await mine.until(lambda t: any(e.get("type") == "viewers" and friend.email in json.dumps(e) for e in t.events))
        await theirs.type("echo typed-by-viewer\n")
        await mine.type("echo from-owner-$((7*6))\n")
        await theirs.until_output("from-owner-42")
        assert b"typed-by-viewer" not in mine.output
        await mine.type("exit\n")
        await theirs.until_event("ended")
        await mine.until_event("ended")

    async_to_sync(scenario)()
    assert AuditEvent.objects.filter(action="session.joined", user=friend).exists()
    assert not Viewer.objects.exists()


def test_wrong_share_key_or_stranger_is_refused(sshd):
    owner, stranger = make_user("poweruser"), make_user("operator")
    session, _ = ssh_session(owner, sshd)

    async def scenario():
        for key in ("wrong", None):
            terminal = await Terminal.open(session.pk, stranger, share_key=key)
            assert not terminal.accepted and terminal.close_code == 4403
        anonymous = await Terminal.open(session.pk, [(b"origin", b"http://127.0.0.1")])
        assert not anonymous.accepted and anonymous.close_code == 4401
        missing = await Terminal.open(uuid.uuid4(), owner)
        assert not missing.accepted

    async_to_sync(scenario)()


def test_foreign_origin_with_a_cookie_is_refused(sshd):
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd)
    from django.test import Client

    browser = Client()
    browser.force_login(owner)
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()

    async def scenario():
        evil = await Terminal.open(session.pk, [(b"cookie", cookie), (b"origin", b"http://evil.example")])
        assert not evil.accepted
        good = await Terminal.open(session.pk, [(b"cookie", cookie), (b"origin", b"http://127.0.0.1")])
        assert good.accepted
        await good.until_event("status", state="active")
        await good.type("exit\n")
        await good.until_event("ended")

    async_to_sync(scenario)()


def test_read_write_share_and_admin_supervision(sshd):
    owner, colleague, admin = make_user("poweruser"), make_user("operator"), make_user("admin")
    session, key = ssh_session(owner, sshd, share_mode="read-write")

    async def scenario():
        mine = await Terminal.open(session.pk, owner)
        await mine.until_event("status", state="active")
        theirs = await Terminal.open(session.pk, colleague, share_key=key)
        assert (await theirs.until_event("access"))["access"] == "collaborator"
        boss = await Terminal.open(session.pk, admin)
        assert (await boss.until_event("access"))["access"] == "supervisor"
        await theirs.type("echo colleague-$((8*8))\n")
        await boss.until_output("colleague-64")
        await boss.type("echo supervisor-typed\n")
        await mine.type("exit\n")
        await boss.until_event("ended")
        assert b"supervisor-typed" not in mine.output

    async_to_sync(scenario)()


def test_terminate_through_the_api_ends_it_for_everyone(sshd):
    owner, session = operator_session(sshd)
    admin = make_user("admin")

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        await database_sync_to_async(lambda: terminate_session(actor=admin, session=Session.objects.get(pk=session.pk)))()
        ended = await terminal.until_event("ended")
        assert ended["status"] == "terminated" and admin.email in ended["message"]

    async_to_sync(scenario)()
    session.refresh_from_db()
    assert session.status == "terminated" and session.ended_by == admin


@pytest.mark.parametrize("cut", ["disable", "force-logout"])
def test_revoking_the_owners_access_ends_their_live_session(sshd, cut):
    owner, session = operator_session(sshd)
    admin = make_user("admin")
    api = APIClient()
    api.force_authenticate(admin)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        if cut == "disable":
            response = await database_sync_to_async(api.post)(f"/api/users/{owner.email}/disable")
        else:
            response = await database_sync_to_async(api.delete)(f"/api/users/{owner.email}/sessions")
        assert response.status_code in (200, 204), response.content
        ended = await terminal.until_event("ended")
        assert ended["status"] == "terminated" and "access was revoked" in ended["message"]

    async_to_sync(scenario)()
    session.refresh_from_db()
    assert session.status == "terminated" and session.ended_by == admin
    assert AuditEvent.objects.filter(action="session.terminated", object_name=str(session.pk)).exists()


def test_owner_reconnects_within_the_grace_period(sshd):
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd)

    async def scenario():
        first = await Terminal.open(session.pk, owner)
        await run_command(first, "export MARK=still-here", "MARK")
        await first.close()
        second = await Terminal.open(session.pk, owner)
        await run_command(second, "echo $MARK", "still-here\r\n")
        await second.type("exit\n")
        await second.until_event("ended")

    async_to_sync(scenario)()


def test_session_ends_when_the_owner_does_not_come_back(sshd, settings):
    settings.SESSION_RECONNECT_GRACE = 0.5
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd)

    async def scenario():
        import asyncio

        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        await terminal.close()
        for _ in range(50):
            await asyncio.sleep(0.1)
            status = await database_sync_to_async(lambda: Session.objects.get(pk=session.pk).status)()
            if status == "ended":
                return
        raise AssertionError("the session outlived the grace period")

    async_to_sync(scenario)()


def test_unreachable_target_fails_cleanly(closed_port):
    owner = make_user("poweruser")
    session, _ = create_session(actor=owner, session_type="ssh", host="127.0.0.1", port=closed_port, username="x", password="y")

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        ended = await terminal.until_event("ended")
        assert ended["status"] == "failed" and "Cannot reach" in ended["message"]

    async_to_sync(scenario)()
    assert Session.objects.get(pk=session.pk).secrets == ""


def test_wrong_password_fails_with_a_clear_message(sshd):
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd, password="not-the-password")

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        ended = await terminal.until_event("ended", timeout=30)
        assert ended["status"] == "failed" and "Authentication" in ended["message"]
        assert "not-the-password" not in json.dumps(terminal.events)

    async_to_sync(scenario)()
