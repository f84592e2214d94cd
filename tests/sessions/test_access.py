"""Who may attach to a session's terminal and type, asked again at every attach (sessions.policy),
through the real ASGI stack against a real OpenSSH sshd: demoted owners, capped tokens, share
links rotated or downgraded under their holders, expired pending sessions, malformed frames."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.roles import Perm
from accounts.services.roles import save_role
from accounts.services.tokens import revoke_user_token, update_api_key
from accounts.services.users import delete_user, disable_user, set_user_role
from sessions import tasks
from sessions.models import Session
from tests.factories import make_api_key, make_role, make_user, make_user_token
from tests.sessions.helpers import Terminal

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


def api_as(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def open_through_the_api(owner, sshd, **extra):
    """POST /api/sessions as ``owner``; the session row and its share key."""
    body = {"session_type": "ssh", "hostname": sshd.host, "port": sshd.port, "username": sshd.user,
            "password": sshd.password, **extra}
    response = api_as(owner).post("/api/sessions", body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    return Session.objects.get(pk=created["session_id"]), created["share_url"].rpartition("key=")[2]


def reshare(owner, session, mode):
    response = api_as(owner).post(f"/api/sessions/{session.pk}/share", {"share_mode": mode}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["share_url"].rpartition("key=")[2]


def capped_token_headers(user, role):
    _, token = make_user_token(user, max_role=Role.objects.get(pk=role))
    return [(b"authorization", f"Bearer {token}".encode()), ORIGIN]


def browser_cookie(user):
    browser = Client()
    browser.force_login(user)
    return browser, (b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode())


async def active(terminal):
    await terminal.until_event("status", state="active")
    return terminal


# --- the owner, asked again at every attach ------------------------------------------------------


def test_owner_demoted_to_viewer_cannot_attach_to_their_pending_session(sshd):
    owner, admin = make_user("poweruser"), make_user("admin")
    session, _ = open_through_the_api(owner, sshd)
    response = api_as(admin).put(f"/api/users/{owner.email}/role", {"role": "viewer"}, format="json")
    assert response.status_code == 200, response.content

    async def scenario():
        by_token = await Terminal.open(session.pk, owner)
        assert not by_token.accepted and by_token.close_code == 4403
        _, cookie = await database_sync_to_async(browser_cookie)(owner)
        by_browser = await Terminal.open(session.pk, [cookie, ORIGIN])
        assert not by_browser.accepted and by_browser.close_code == 4403

    async_to_sync(scenario)()
    session.refresh_from_db()
    assert session.status == "pending" and session.node == ""  # the target was never reached


def test_operator_demoted_after_opening_cannot_reconnect_and_type(sshd):
    owner, admin = make_user("poweruser"), make_user("admin")
    session, _ = open_through_the_api(owner, sshd)

    async def scenario():
        first = await active(await Terminal.open(session.pk, owner))
        await first.close()
        await database_sync_to_async(api_as(admin).put)(
            f"/api/users/{owner.email}/role", {"role": "viewer"}, format="json"
        )
        again = await Terminal.open(session.pk, owner)
        assert not again.accepted and again.close_code == 4403

    async_to_sync(scenario)()


def test_owner_token_capped_at_viewer_is_refused(sshd):
    owner = make_user("poweruser")
    session, _ = open_through_the_api(owner, sshd)

    async def scenario():
        capped = await Terminal.open(session.pk, await database_sync_to_async(capped_token_headers)(owner, "viewer"))
        assert not capped.accepted and capped.close_code == 4403

    async_to_sync(scenario)()
    session.refresh_from_db()
    assert session.status == "pending" and session.node == ""


def test_owner_token_capped_at_viewer_cannot_type_into_the_running_session(sshd, tmp_path):
    owner = make_user("poweruser")
    session, _ = open_through_the_api(owner, sshd)
    sentinel = tmp_path / "typed-by-capped-token"

    async def scenario():
        mine = await active(await Terminal.open(session.pk, owner))
        capped = await Terminal.open(session.pk, await database_sync_to_async(capped_token_headers)(owner, "viewer"))
        if capped.accepted:  # whatever it may see, its keys must go nowhere
            await capped.type(f"touch {sentinel}\n")
        await mine.type("echo owner-$((6*7))\n")
        await mine.until_output("owner-42")
        assert not capped.accepted and capped.close_code == 4403

    async_to_sync(scenario)()
    assert not sentinel.exists()


# --- pending sessions expire within minutes --------------------------------------------------------


def test_pending_ttl_is_a_few_minutes():
    assert 60 <= settings.SESSION_PENDING_TTL <= 600


def test_pending_session_older_than_the_ttl_cannot_be_attached(sshd):
    owner = make_user("poweruser")
    session, _ = open_through_the_api(owner, sshd)
    Session.objects.filter(pk=session.pk).update(created_at=timezone.now() - timedelta(minutes=15))

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        ended = await terminal.until_event("ended")
        assert "Expired" in ended["message"]
        assert not any(e.get("type") == "status" for e in terminal.events)

    async_to_sync(scenario)()
    session.refresh_from_db()
    assert session.status == "ended" and session.secrets == "" and session.node == ""


def test_reaper_ends_a_pending_session_nobody_opened_within_the_ttl(sshd):
    owner = make_user("poweruser")
    stale, _ = open_through_the_api(owner, sshd)
    fresh, _ = open_through_the_api(owner, sshd)
    Session.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=15))
    assert tasks.reap_lost_sessions() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "ended" and stale.ended_at is not None and stale.secrets == ""
    assert fresh.status == "pending"


# --- share links ---------------------------------------------------------------------------------


@pytest.mark.parametrize("new_mode", ["read-write", "read-only"])
def test_rotating_or_downgrading_the_link_disconnects_its_holders_at_once(sshd, new_mode):
    owner, colleague, boss = make_user("poweruser"), make_user("operator"), make_user("admin")
    session, key = open_through_the_api(owner, sshd, share_mode="read-write")

    async def scenario():
        mine = await active(await Terminal.open(session.pk, owner))
        theirs = await Terminal.open(session.pk, colleague, share_key=key)
        assert (await theirs.until_event("access"))["access"] == "collaborator"
        await active(theirs)
        supervisor = await active(await Terminal.open(session.pk, boss))
        new_key = await database_sync_to_async(reshare)(owner, session, new_mode)
        ended = await theirs.until_event("ended", timeout=5)
        assert "share link" in ended["message"]
        await theirs.until(lambda t: t.closed, timeout=5)
        stale = await Terminal.open(session.pk, colleague, share_key=key)
        assert not stale.accepted and stale.close_code == 4403
        fresh = await Terminal.open(session.pk, colleague, share_key=new_key)
        expected = "collaborator" if new_mode == "read-write" else "viewer"
        assert (await fresh.until_event("access"))["access"] == expected
        await mine.type("echo owner-stays-$((6*7))\n")  # the owner and the supervisor stay
        await supervisor.until_output("owner-stays-42")
        await fresh.until_output("owner-stays-42")
        assert not supervisor.closed and not mine.closed
        await mine.type("exit\n")
        await mine.until_event("ended")

    async_to_sync(scenario)()


def test_viewer_role_cannot_type_through_a_read_write_link(sshd, tmp_path):
    owner, viewer = make_user("poweruser"), make_user("viewer")
    session, key = open_through_the_api(owner, sshd, share_mode="read-write")
    sentinel = tmp_path / "typed-by-viewer"

    async def scenario():
        mine = await active(await Terminal.open(session.pk, owner))
        theirs = await Terminal.open(session.pk, viewer, share_key=key)
        assert (await theirs.until_event("access"))["access"] == "viewer"
        await active(theirs)
        await theirs.type(f"touch {sentinel}\n")
        await mine.type("echo after-$((5*5))\n")
        await theirs.until_output("after-25")
        await mine.type(f"ls {sentinel} || echo absent-$((2*3))\n")
        await mine.until_output("absent-6")
        await mine.type("exit\n")
        await mine.until_event("ended")

    async_to_sync(scenario)()
    assert not sentinel.exists()


def disable(user):
    disable_user(user=user, actor=make_user("admin"))


def demote(user):
    set_user_role(user=user, role=Role.objects.get(pk="viewer"), actor=make_user("admin"))


def delete(user):
    delete_user(user=user, actor=make_user("admin"))


@pytest.mark.parametrize(
    "cut, told", [(disable, "access was revoked"), (demote, "role changed"), (delete, "account was deleted")]
)
def test_a_collaborator_whose_access_is_cut_is_dropped_at_once_and_types_no_more(sshd, tmp_path, cut, told):
    owner, colleague = make_user("poweruser"), make_user("operator")
    session, key = open_through_the_api(owner, sshd, share_mode="read-write")
    sentinel = tmp_path / "typed-after-the-cut"

    async def scenario():
        mine = await active(await Terminal.open(session.pk, owner))
        theirs = await Terminal.open(session.pk, colleague, share_key=key)
        assert (await theirs.until_event("access"))["access"] == "collaborator"
        await active(theirs)
        await database_sync_to_async(cut)(colleague)
        assert told in (await theirs.until_event("ended", timeout=5))["message"]
        await theirs.until(lambda t: t.closed, timeout=5)
        await theirs.type(f"touch {sentinel}\n")  # nothing it sends counts any more
        await mine.type(f"ls {sentinel} || echo absent-$((2*3))\n")
        await mine.until_output("absent-6")
        assert not mine.closed
        if cut is demote:  # attaching again is decided again: a viewer watches, never types
            again = await Terminal.open(session.pk, colleague, share_key=key)
            assert (await again.until_event("access"))["access"] == "viewer"
        await mine.type("exit\n")
        await mine.until_event("ended")

    async_to_sync(scenario)()
    assert not sentinel.exists()


def revoke_token(owner):
    token_row, token = make_user_token(owner)
    return (b"authorization", f"Bearer {token}".encode()), lambda: revoke_user_token(token=token_row, actor=owner)


def restrict_api_key(owner):
    key, token = make_api_key(owner)
    return (b"x-api-key", token.encode()), lambda: update_api_key(api_key=key, actor=None, allowed_ips=["192.0.2.1"])


@pytest.mark.parametrize("credential", [revoke_token, restrict_api_key])
def test_revoking_or_restricting_the_token_a_terminal_signed_in_with_closes_that_terminal_only(sshd, credential):
    owner = make_user("poweruser")
    session, _ = open_through_the_api(owner, sshd)
    header, cut = credential(owner)
    _, cookie = browser_cookie(owner)

    async def scenario():
        by_token = await active(await Terminal.open(session.pk, [header, ORIGIN]))
        by_browser = await active(await Terminal.open(session.pk, [cookie, ORIGIN]))
        await database_sync_to_async(cut)()
        assert "was revoked or restricted" in (await by_token.until_event("ended", timeout=5))["message"]
        await by_token.until(lambda t: t.closed, timeout=5)
        await by_token.type("echo typed-after-revocation\n")
        await by_browser.type("echo still-$((3*3))\n")
        await by_browser.until_output("still-9")
        assert not by_browser.closed and b"typed-after-revocation" not in by_browser.output
        await by_browser.type("exit\n")
        await by_browser.until_event("ended")

    async_to_sync(scenario)()


def test_narrowing_a_custom_role_closes_the_terminals_of_its_holders(sshd):
    ops = make_role("ops", Role.objects.get(pk="operator").permission_set)
    owner, colleague = make_user("poweruser"), make_user("ops")
    session, key = open_through_the_api(owner, sshd, share_mode="read-write")

    async def scenario():
        mine = await active(await Terminal.open(session.pk, owner))
        theirs = await Terminal.open(session.pk, colleague, share_key=key)
        assert (await theirs.until_event("access"))["access"] == "collaborator"
        ops.permissions = sorted(ops.permission_set - {Perm.SESSIONS_CONNECT})
        await database_sync_to_async(save_role)(role=ops, actor=None)
        assert "role changed" in (await theirs.until_event("ended", timeout=5))["message"]
        again = await Terminal.open(session.pk, colleague, share_key=key)
        assert (await again.until_event("access"))["access"] == "viewer"
        await mine.type("exit\n")
        await mine.until_event("ended")

    async_to_sync(scenario)()


def test_an_owner_far_behind_is_closed_to_start_again_and_the_session_goes_on(sshd, settings):
    """Here the owner is let go before the target pauses: its page reconnects (no "ended")."""
    settings.SESSION_HIGH_WATER = 64 * 1024 * 1024
    settings.SESSION_VIEWER_MAX_BEHIND = 2 * 1024 * 1024
    owner = make_user("poweruser")
    session, _ = open_through_the_api(owner, sshd)

    async def scenario():
        mine = await active(await Terminal.open(session.pk, owner))
        mine.acknowledges = False
        await mine.type("head -c 6000000 /dev/zero | tr '\\0' A; echo; echo FL-$((2*3))-OK\n")
        await mine.until(lambda t: t.closed, timeout=30)
        assert not [e for e in mine.events if e.get("type") == "ended"]
        settings.SESSION_HIGH_WATER = 256 * 1024  # from now on the target waits for the page
        settings.SESSION_LOW_WATER = 128 * 1024
        again = await active(await Terminal.open(session.pk, owner))
        await again.until_output("FL-6-OK", timeout=60)
        await again.type("exit\n")
        await again.until_event("ended")

    async_to_sync(scenario)()


def test_a_promotion_keeps_the_attachment(sshd):
    owner, colleague, boss = make_user("poweruser"), make_user("operator"), make_user("admin")
    promoted = Role.objects.get(pk="poweruser")
    session, key = open_through_the_api(owner, sshd, share_mode="read-write")

    async def scenario():
        mine = await active(await Terminal.open(session.pk, owner))
        theirs = await active(await Terminal.open(session.pk, colleague, share_key=key))
        await database_sync_to_async(set_user_role)(user=colleague, role=promoted, actor=boss)
        await theirs.type("echo still-here-$((4*4))\n")
        await mine.until_output("still-here-16")
        assert not theirs.closed
        await mine.type("exit\n")
        await mine.until_event("ended")

    async_to_sync(scenario)()


def test_browser_redeems_the_link_and_its_websocket_carries_no_key(sshd):
    owner, friend = make_user("poweruser"), make_user("operator")
    session, key = open_through_the_api(owner, sshd)
    browser, cookie = browser_cookie(friend)
    response = browser.post(f"/client/{session.pk}/join", {"key": key})
    assert response.status_code == 302 and response["Location"] == f"/client/{session.pk}"

    async def scenario():
        mine = await active(await Terminal.open(session.pk, owner))
        theirs = await Terminal.open(session.pk, [cookie, ORIGIN], query="cols=90&rows=20")
        assert theirs.accepted and (await theirs.until_event("access"))["access"] == "viewer"
        await database_sync_to_async(reshare)(owner, session, "read-only")
        await theirs.until(lambda t: t.closed, timeout=5)
        again = await Terminal.open(session.pk, [cookie, ORIGIN])  # its grant died with the old link
        assert not again.accepted and again.close_code == 4403
        await mine.type("exit\n")
        await mine.until_event("ended")

    async_to_sync(scenario)()


# --- malformed frames ----------------------------------------------------------------------------

MALFORMED_RESIZES = [
    {"type": "resize"},
    {"type": "resize", "cols": 120},
    {"type": "resize", "cols": "120", "rows": "40"},
    {"type": "resize", "cols": "wide", "rows": "tall"},
    {"type": "resize", "cols": -80, "rows": -24},
    {"type": "resize", "cols": 0, "rows": 0},
    {"type": "resize", "cols": 10**40, "rows": 10**40},
    {"type": "resize", "cols": 80.5, "rows": 24.5},
    {"type": "resize", "cols": True, "rows": True},
    {"type": "resize", "cols": None, "rows": None},
    {"type": "resize", "cols": [80], "rows": {"n": 24}},
]
NOT_JSON = [
    "resize 80x24", '{"type": "resize", "cols": 1e999, "rows": NaN}', "[1, 2]", '"resize"', "{",
    "[" * 200_000,  # deep enough to make a JSON parser recurse until it gives up
    "[" * 500 + "]" * 500,
    '{"type": "resize", "cols": 80, "rows": 24, "pad": "' + "x" * 100_000 + '"}',
]


def test_malformed_resize_frames_are_ignored(sshd):
    owner = make_user("poweruser")
    session, _ = open_through_the_api(owner, sshd)

    async def scenario():
        terminal = await active(await Terminal.open(session.pk, owner))
        await terminal.control(type="resize", cols=111, rows=33)
        for message in MALFORMED_RESIZES:
            await terminal.control(**message)
        for text in NOT_JSON:
            await terminal.ws.send_to(text_data=text)
        await terminal.type("stty size; echo size-$((1+1))\n")
        await terminal.until_output("size-2\r\n")
        assert b"33 111" in terminal.output
        assert not terminal.closed
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()
