"""Recordings: start one for a session, close it, close those a dead node left open.

The file is written by the live session's node (recordings.writer); its row is written only here.
"""

from django.conf import settings
from django.utils import timezone

from recordings.models import Recording
from recordings.writer import AsciicastWriter

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


def close_recording(*, recording_id, size, ended_at=None):
    """Mark a recording finished at ``size`` bytes (its writer has closed the file)."""
    Recording.objects.filter(pk=recording_id).update(size=size, ended_at=ended_at or timezone.now())


def close_orphaned_recordings(*, session_id, ended_at):
    """Close the recordings a dead node left open: each ends at the node's last flush, on disk."""
    for recording in Recording.objects.filter(session_id=session_id, ended_at__isnull=True):
        try:
            size = (settings.RECORDINGS_DIR / recording.name).stat().st_size
        except OSError:  # not on this machine's disk: keep what the node last said
            size = recording.size
        Recording.objects.filter(pk=recording.pk, ended_at__isnull=True).update(ended_at=ended_at, size=size)
