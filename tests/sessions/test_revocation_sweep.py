"""A withdrawn access is carried out even when its notice is lost (Redis down when it was sent).

The withdrawal is written on the Viewer row before the notice goes out; the node's sweep
(sessions.runtime.node, every SESSION_SWEEP seconds) closes the websockets whose row says so.
"""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import transaction

from sessions.models import Viewer
from sessions.runtime import messages
from sessions.services.lifecycle import drop_attachments
from tests.factories import make_user
from tests.sessions.helpers import Terminal
from tests.sessions.test_access import open_through_the_api

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def notices_lost(monkeypatch):
    """Every revocation notice fails as it does while the channel layer's Redis is down."""

    def refuse(channels, message):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(messages, "notify_revoked", refuse)


def test_a_watcher_whose_access_is_withdrawn_is_closed_though_the_notice_was_lost(sshd, notices_lost):
    owner, watcher = make_user("poweruser"), make_user("admin")
    session, _ = open_through_the_api(owner, sshd)

    @database_sync_to_async
    def withdraw():
        with transaction.atomic():
            drop_attachments("Your access was revoked.", user=watcher)

    async def scenario():
        mine = await Terminal.open(session.pk, owner)
        await mine.until_event("status", state="active")
        theirs = await Terminal.open(session.pk, watcher)
        await theirs.until_event("access", access="supervisor")
        await theirs.until_event("status", state="active")
        await withdraw()
        ended = await theirs.until_event("ended", timeout=10)
        assert ended["message"] == "Your access was revoked."
        await mine.type("echo still-$((20+1))\n")  # the owner's terminal goes on
        await mine.until_output("still-21")
        assert not mine.closed
        await mine.type("exit\n")
        await mine.until_event("ended")

    async_to_sync(scenario)()
    assert not Viewer.objects.filter(user=watcher).exists()


def test_rows_of_websockets_the_node_no_longer_holds_are_cleared():
    from sessions.services.lifecycle import revoked_viewers
    from tests.sessions.test_attachable import ad_hoc

    owner = make_user("poweruser")
    session = ad_hoc(owner)
    kept = Viewer.objects.create(session=session, channel_name="a", user=owner, access="owner", node="n1", revoked="x")
    Viewer.objects.create(session=session, channel_name="gone", user=owner, access="owner", node="n1", revoked="y")
    Viewer.objects.create(session=session, channel_name="fine", user=owner, access="owner", node="n1")
    Viewer.objects.create(session=session, channel_name="other", user=owner, access="owner", node="n2", revoked="z")
    assert revoked_viewers(node_id="n1", known=["a", "fine"]) == {"a": "x"}
    assert sorted(Viewer.objects.values_list("channel_name", flat=True)) == ["a", "fine", "other"]
    assert kept.pk


def test_a_terminate_whose_notice_is_lost_still_answers_and_is_committed(monkeypatch):
    """An admin's DELETE while the channel layer is down: 200 and a terminated row (the home
    node's sweep hangs up: tests/outages/test_redis.py), never a 500."""
    from rest_framework.test import APIClient

    from tests.sessions.test_attachable import ad_hoc

    def refuse(*args):
        raise ConnectionError("Connection refused.")

    monkeypatch.setattr(messages, "notify_terminated", refuse)
    session = ad_hoc(make_user("poweruser"))
    session.node = "somewhere"
    session.save(update_fields=["node"])
    admin = APIClient()
    admin.force_authenticate(make_user("admin"))
    response = admin.delete(f"/api/sessions/{session.pk}")
    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert session.status == "terminated"
