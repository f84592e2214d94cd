"""Cut a recording into timed chunks of text for search, and list the commands typed in it.

A recording's status goes NOT_INDEXED → INDEXING → INDEXED, or FAILED with the reason. The
claim is a conditional UPDATE, so the task queued at the session's end, the periodic sweep and
the ``index_recordings`` command may all run at once and index it once; an indexing whose
worker died is taken over after RECORDING_INDEX_STALE_AFTER.

Chunks are written in batches, each in its own short transaction: on SQLite a recording of a
gigabyte would otherwise hold the database's one write lock for a minute, and the nodes'
session writes with it.
"""

import re
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from recordings.choices import IndexStatus
from recordings.models import Recording, RecordingChunk, RecordingCommand
from recordings.search import terms_of
from recordings.text import TerminalLines

# Text per chunk. A match is placed on its line whatever the size; larger chunks repeat fewer
# words in the index (faster indexing), smaller ones check less text per candidate when searching.
CHUNK_CHARS = 64 * 1024
BATCH_CHARS = 1 << 20  # text written per transaction
# A line that is a prompt and nothing else: Enter pressed on an empty command line.
_BARE_PROMPT = re.compile(r"[$#%>]$")


class UnreadableRecording(Exception):
    pass


def claim(recording_id, *, force=False):
    """Take the recording for indexing; False when it is not closed yet, or is indexed, or
    another worker is at it (unless ``force``: the rebuild command)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.RECORDING_INDEX_STALE_AFTER)
    claimable = Q(index_status__in=[IndexStatus.NOT_INDEXED, IndexStatus.FAILED]) | Q(
        index_status=IndexStatus.INDEXING, index_started_at__lt=stale
    )
    rows = Recording.objects.filter(pk=recording_id, ended_at__isnull=False)
    if not force:
        rows = rows.filter(claimable)
    return rows.update(index_status=IndexStatus.INDEXING, index_started_at=now, index_error="") == 1


def index_recording(recording_id, *, force=False):
    """Index one closed recording; return its status afterwards (None: not claimed)."""
    if not claim(recording_id, force=force):
        return None
    recording = Recording.objects.get(pk=recording_id)
    try:
        _index(recording)
    except (OSError, UnreadableRecording) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _clear(recording)
        Recording.objects.filter(pk=recording_id).update(index_status=IndexStatus.FAILED, index_error=reason[:500])
        return IndexStatus.FAILED
    Recording.objects.filter(pk=recording_id).update(index_status=IndexStatus.INDEXED, indexed_at=timezone.now())
    return IndexStatus.INDEXED


def _clear(recording):
    with transaction.atomic():
        RecordingChunk.objects.filter(recording=recording).delete()
        RecordingCommand.objects.filter(recording=recording).delete()


def _index(recording):
    _clear(recording)
    writer = _ChunkWriter(recording)
    screen = TerminalLines()
    waiting_commands = []  # when Enter was pressed, for lines still being drawn
    with open(recording.path, "rb") as cast:
        cast.readline()  # the header
        for number, raw in enumerate(cast, start=2):
            try:
                at, kind, data = orjson.loads(raw)
            except (orjson.JSONDecodeError, ValueError, TypeError):
                raise UnreadableRecording(f"Line {number} of the recording is not an asciicast event.") from None
            if kind == "o":
                screen.feed(at, data)
            elif kind == "m":
                waiting_commands.append(at)
            else:
                continue
            if screen.lines:
                lines, screen.lines = screen.lines, []
                writer.add(lines, waiting_commands)
    writer.add(screen.finish(), waiting_commands)
    writer.close()


class _ChunkWriter:
    def __init__(self, recording):
        self.recording = recording
        self.seq = 0
        self.lines = []
        self.times = []
        self.size = 0
        self.chunks = []
        self.batch_size = 0
        self.commands = []

    def add(self, lines, waiting_commands):
        for at, line in lines:
            if waiting_commands:
                entered = waiting_commands.pop(0)
                if not _BARE_PROMPT.search(line):
                    self.commands.append(RecordingCommand(recording=self.recording, at=entered, text=line[:1000]))
            self.lines.append(line)
            self.times.append(round(at, 3))
            self.size += len(line) + 1
            if self.size >= CHUNK_CHARS:
                self._cut()

    def _cut(self):
        if not self.lines:
            return
        text = "\n".join(self.lines)
        self.chunks.append(
            RecordingChunk(
                recording=self.recording, seq=self.seq, start=self.times[0], text=text, terms=terms_of(text),
                times=self.times,
            )
        )
        self.seq += 1
        self.batch_size += self.size
        self.lines, self.times, self.size = [], [], 0
        if self.batch_size >= BATCH_CHARS:
            self._write()

    def _write(self):
        with transaction.atomic():
            RecordingChunk.objects.bulk_create(self.chunks)
            RecordingCommand.objects.bulk_create(self.commands)
        self.chunks, self.commands, self.batch_size = [], [], 0

    def close(self):
        self._cut()
        self._write()


def unindexed(limit=100):
    """Closed recordings the end-of-session task missed, or whose indexing died: for the sweep."""
    stale = timezone.now() - timedelta(seconds=settings.RECORDING_INDEX_STALE_AFTER)
    waiting = Q(index_status=IndexStatus.NOT_INDEXED) | Q(index_status=IndexStatus.INDEXING, index_started_at__lt=stale)
    return list(
        Recording.objects.filter(waiting, ended_at__isnull=False).order_by("ended_at").values_list("pk", flat=True)[:limit]
    )
