"""Retention: recordings, their index and trails older than the setting (or a connection's own)
are deleted by the beat task, each deletion audited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from recordings import chain, indexing
from recordings.models import Recording, RecordingChunk
from recordings.tasks import delete_expired_recordings
from sessions.models import Session
from sessions.services.sessions import connect_connection
from tests.factories import make_connection, make_user
from tests.recordings.conftest import record

pytestmark = pytest.mark.django_db(transaction=True)


def aged(session, days):
    Session.objects.filter(pk=session.pk).update(ended_at=timezone.now() - timedelta(days=days))


def test_expired_trails_go_with_their_recording_and_index(sshd, settings):
    settings.RECORDING_RETENTION_DAYS = 30
    owner = make_user("poweruser")
    old, _ = record(owner, sshd, [(["echo old-$((6*7))\r"], "old-42")])
    recent, _ = record(owner, sshd, [(["echo recent-$((6*7))\r"], "recent-42")])
    for recording in (old, recent):
        indexing.index_recording(recording.pk)
    aged(old.session, 31)
    aged(recent.session, 29)
    assert delete_expired_recordings() == 1
    assert not Session.objects.filter(pk=old.session_id).exists()
    assert not Recording.objects.filter(pk=old.pk).exists() and not RecordingChunk.objects.filter(recording_id=old.pk).exists()
    assert not old.path.exists() and not chain.chain_path(old.path).exists()
    assert Recording.objects.filter(pk=recent.pk).exists() and recent.path.exists()
    assert AuditEvent.objects.filter(action="recording.deleted", object_name=old.name).exists()
    assert AuditEvent.objects.filter(action="trail.deleted", object_name=str(old.session_id)).exists()
    assert delete_expired_recordings() == 0  # safe to run twice


def test_a_connection_keeps_its_own_period_and_zero_keeps_for_good(sshd, settings):
    settings.RECORDING_RETENTION_DAYS = 0
    owner = make_user("poweruser")
    connection = make_connection(owner, host=sshd.host, port=sshd.port, username=sshd.user, password=sshd.password)
    connection.recording_retention_days = 7
    connection.save(update_fields=["recording_retention_days"])
    kept, _ = record(owner, sshd, [(["echo kept\r"], "kept\r\n")])
    aged(kept.session, 400)
    session, _ = connect_connection(actor=owner, connection=connection)
    Session.objects.filter(pk=session.pk).update(status="ended", ended_at=timezone.now() - timedelta(days=8))
    live, _ = connect_connection(actor=owner, connection=connection)
    Session.objects.filter(pk=live.pk).update(status="active", ended_at=timezone.now() - timedelta(days=8))
    assert delete_expired_recordings() == 1
    assert not Session.objects.filter(pk=session.pk).exists()
    assert Session.objects.filter(pk=kept.session_id).exists()  # no default period: kept for good
    assert Session.objects.filter(pk=live.pk).exists()  # live sessions are never deleted
