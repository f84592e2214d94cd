"""``Session.objects.attachable_by`` (websocket and pages) agrees with sessions.policy.access_for."""

import pytest

from sessions import policy
from sessions.models import Session
from sessions.services.sessions import create_session, rotate_share_key, share_digest
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.django_db


def ad_hoc(owner):
    return create_session(actor=owner, session_type="ssh", host="127.0.0.1", username="u", password="pw")[0]


def on_connection(owner, connection):
    return Session.objects.create(
        owner=owner, connection=connection, session_type="ssh", host="127.0.0.1", port=22, username="u"
    )


def attachable(user, digest=""):
    return set(Session.objects.attachable_by(user, digest).values_list("pk", flat=True))


def by_policy(user, digest=""):
    return {s.pk for s in Session.objects.all() if policy.access_for(user, s, digest) is not None}


@pytest.fixture
def world():
    poweruser, operator, viewer, admin = (make_user(r) for r in ("poweruser", "operator", "viewer", "admin"))
    theirs = ad_hoc(poweruser)
    mine = on_connection(operator, make_connection(operator))
    lost = on_connection(operator, make_connection(poweruser))  # a connection no longer theirs to use
    key = rotate_share_key(actor=poweruser, session=theirs, share_mode="read-write")
    return {"users": (poweruser, operator, viewer, admin), "sessions": (theirs, mine, lost), "digest": share_digest(key)}


@pytest.mark.parametrize("index", range(4), ids=["poweruser", "operator", "viewer", "admin"])
@pytest.mark.parametrize("with_link", [False, True], ids=["no-link", "link"])
def test_the_queryset_admits_exactly_whom_the_policy_admits(world, index, with_link):
    user = world["users"][index]
    digest = world["digest"] if with_link else ""
    assert attachable(user, digest) == by_policy(user, digest)


def test_what_each_one_may_attach_to(world):
    poweruser, operator, viewer, admin = world["users"]
    theirs, mine, lost = world["sessions"]
    assert attachable(poweruser) == {theirs.pk}
    assert attachable(operator) == {mine.pk}  # not the one on a connection they may no longer use
    assert attachable(viewer) == set()
    assert attachable(viewer, world["digest"]) == {theirs.pk}  # a link lends watching
    assert attachable(viewer, share_digest("a guessed key")) == set()
    assert attachable(admin) == {theirs.pk, mine.pk, lost.pk}
