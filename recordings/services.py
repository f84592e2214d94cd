"""Recordings: start one for a session, close it, close those a dead node left open, verify,
delete (audited), and delete what the retention period has passed.

The file is written by the live session's node (recordings.writer); its row is written only here.
A closed recording is queued for indexing (recordings.indexing) once its row commits.
"""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from recordings import chain, transfers
from recordings.models import Recording
from recordings.writer import AsciicastWriter

logger = logging.getLogger(__name__)

# What each kind of stream is recorded as (a transport names its kind: sessions.transports).
WRITERS = {"asciicast": AsciicastWriter}


def start_recording(*, session, kind, width, height, started_at):
    """Create the recording's file and row; return ``(writer, recording)``."""
    name = f"{started_at:%Y/%m/%d}/{session.pk}.cast"
    writer = WRITERS[kind](
        settings.RECORDINGS_DIR / name,
        width=width,
        height=height,
        title=f"{session.session_type} {session.target}",
        started_at=started_at,
    )
    recording = Recording.objects.create(name=name, session=session, started_at=started_at)
    return writer, recording


def close_recording(*, recording_id, size, digest="", ended_at=None):
    """Mark a recording finished at ``size`` bytes with its chain's final ``digest`` (its writer
    has closed the file), and queue its indexing."""
    Recording.objects.filter(pk=recording_id).update(size=size, digest=digest, ended_at=ended_at or timezone.now())
    queue_indexing(recording_id)


def close_orphaned_recordings(*, session_id, ended_at):
    """Close the recordings a dead node left open: each ends at the node's last flush, on disk,
    and its chain is sealed there if what is on disk still matches it."""
    for recording in Recording.objects.filter(session_id=session_id, ended_at__isnull=True):
        size, digest = recording.size, ""
        try:
            size, digest = chain.seal(recording.path)
        except OSError:  # not on this machine's disk: keep what the node last said
            pass
        except chain.Altered as exc:
            logger.warning("recording %s was altered before it was sealed: %s", recording.name, exc)
        closed = Recording.objects.filter(pk=recording.pk, ended_at__isnull=True)
        if closed.update(ended_at=ended_at, size=size, digest=digest):
            queue_indexing(recording.pk)


def queue_indexing(recording_id):
    """Index the recording once this transaction commits. Should the broker be down, the sweep
    (recordings.tasks.sweep_unindexed_recordings) picks it up later."""

    def send():
        from recordings.tasks import index_recording

        try:
            index_recording.apply_async((recording_id,), queue=settings.RECORDING_INDEX_QUEUE or None, retry=False)
        except Exception as exc:  # the broker is down: never fail a session's end for it
            logger.warning("could not queue the indexing of recording %s (%s); the sweep will", recording_id, exc)

    transaction.on_commit(send)


def verify_recording(recording):
    """Check a recording against its chain (recordings.chain): a ``chain.Verdict``."""
    return chain.verify(recording.path, digest=recording.digest, size=recording.size if recording.digest else None)


def delete_recording(*, actor, recording, ip=None, reason=""):
    """Delete a recording's file, chain, index and row, and say so in the audit log."""
    with transaction.atomic():
        name = recording.name
        session_id = recording.session_id
        recording.delete()
        record_event(
            action=AuditAction.RECORDING_DELETED, user=actor, object_type="recording", object_name=name, ip=ip,
            details=reason or (f"session {session_id}" if session_id else ""),
        )
        transaction.on_commit(lambda: _remove_files(name))


def _remove_files(name):
    path = settings.RECORDINGS_DIR / name
    for leftover in (path, chain.chain_path(path)):
        leftover.unlink(missing_ok=True)


def expired_sessions(now=None):
    """Sessions whose retention period has passed: ended more than their connection's
    ``recording_retention_days`` ago, or PAM_RECORDING_RETENTION_DAYS for the others (0: kept)."""
    from connections.models import Connection
    from sessions.choices import FINISHED_STATUSES
    from sessions.models import Session

    now = now or timezone.now()
    overrides = Connection.objects.filter(recording_retention_days__gt=0)
    expired = Q(pk__in=[])
    for days in overrides.values_list("recording_retention_days", flat=True).distinct():
        expired |= Q(connection__recording_retention_days=days, ended_at__lt=now - timedelta(days=days))
    if settings.RECORDING_RETENTION_DAYS:
        by_default = Q(connection__isnull=True) | Q(connection__recording_retention_days__isnull=True) | Q(
            connection__recording_retention_days=0
        )
        expired |= by_default & Q(ended_at__lt=now - timedelta(days=settings.RECORDING_RETENTION_DAYS))
    return Session.objects.filter(status__in=FINISHED_STATUSES).filter(expired)


def delete_expired(*, now=None, batch=200):
    """Delete the sessions (recording, index, trail, kept file contents) whose retention period
    has passed, and expired download ids; each session's deletion is audited. Returns how many
    sessions went."""
    from recordings.models import DownloadTicket

    DownloadTicket.objects.filter(expires_at__lt=now or timezone.now()).delete()
    deleted = 0
    for session in expired_sessions(now).select_related("recording")[:batch]:
        with transaction.atomic():
            recording = getattr(session, "recording", None)
            if recording is not None:
                delete_recording(actor=None, recording=recording, reason=f"retention: session {session.pk}")
            session_id = str(session.pk)
            session.delete()
            transaction.on_commit(partial(transfers.remove_contents, session_id))
            record_event(
                action=AuditAction.TRAIL_DELETED, object_type="session", object_name=session_id,
                details="retention period passed",
            )
        deleted += 1
    return deleted
