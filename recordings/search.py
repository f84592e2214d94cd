"""Substring search over recordings' text: a trigram index on RecordingChunk.text.

PostgreSQL: a pg_trgm GIN index, queried with ``ILIKE``. SQLite: an FTS5 table with the trigram
tokenizer over the chunk table's text (external content, kept in step by triggers), queried
with a phrase, which for trigrams is exactly "contains, ignoring case". Both come from this
app's migrations; the ``contains`` lookup below is the one place that speaks either dialect.

A query needs three characters at least: shorter ones have no trigram to look up, and would
read every chunk.
"""

import re
from dataclasses import dataclass

from django.db import models

MIN_QUERY = 3
FTS_TABLE = "recordings_recordingchunk_fts"


class SearchableText(models.TextField):
    """A TextField with the trigram ``contains`` lookup (``text__contains_text="…"``)."""


@SearchableText.register_lookup
class ContainsText(models.Lookup):
    lookup_name = "contains_text"

    def as_sql(self, compiler, connection):
        raise NotImplementedError(f"No trigram index on {connection.vendor}.")

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", self.rhs) + "%"
        return f"{lhs} ILIKE %s", [*lhs_params, pattern]

    def as_sqlite(self, compiler, connection):
        phrase = '"' + self.rhs.replace('"', '""') + '"'
        row_id = f"{compiler.quote_name_unless_alias(self.lhs.alias)}.{connection.ops.quote_name('id')}"
        return f"{row_id} IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s)", [phrase]


def matches(text, query):
    """Where ``query`` occurs in ``text``, ignoring case: ``(start, end)`` pairs."""
    return [(m.start(), m.end()) for m in re.finditer(re.escape(query), text, re.IGNORECASE)]


SNIPPET = 160


def snippet(line, start, end):
    """Up to SNIPPET characters of ``line`` around the match at ``[start, end)``, and where the
    match lies in it: ``(text, (start, end))``."""
    if len(line) <= SNIPPET:
        return line, (start, end)
    before = max(0, min(start - (SNIPPET - (end - start)) // 2, len(line) - SNIPPET))
    text = line[before:before + SNIPPET]
    return text, (start - before, min(end - before, len(text)))


@dataclass
class Hit:
    """One line of a recording where the query was found, and the second it was shown."""

    recording: object
    at: float
    snippet: str
    highlight: tuple

    @property
    def before(self):
        return self.snippet[: self.highlight[0]]

    @property
    def match(self):
        return self.snippet[self.highlight[0]:self.highlight[1]]

    @property
    def after(self):
        return self.snippet[self.highlight[1]:]


def find(query, recordings, *, offset=0, limit=50, per_recording=None):
    """The lines of ``recordings`` (a queryset) containing ``query``, newest recording first
    and in order within each: up to ``limit`` hits after the first ``offset``, and whether more
    follow. ``per_recording`` caps the hits taken from one recording."""
    from recordings.models import RecordingChunk

    chunks = (
        RecordingChunk.objects.filter(recording__in=recordings, text__contains_text=query)
        .select_related("recording__session__owner", "recording__session__connection")
        .order_by("-recording__started_at", "recording_id", "seq")
    )
    hits, skipped, taken = [], 0, {}
    for chunk in chunks.iterator(chunk_size=50):
        text = chunk.text
        for start, end in matches(text, query):
            if per_recording and taken.get(chunk.recording_id, 0) >= per_recording:
                break
            if skipped < offset:
                skipped += 1
                continue
            if len(hits) == limit:
                return hits, True
            line_start = text.rfind("\n", 0, start) + 1
            line_end = text.find("\n", end)
            line = text[line_start:line_end if line_end >= 0 else len(text)]
            number = text.count("\n", 0, start)
            shown, highlight = snippet(line, start - line_start, end - line_start)
            hits.append(Hit(chunk.recording, chunk.times[number], shown, highlight))
            taken[chunk.recording_id] = taken.get(chunk.recording_id, 0) + 1
    return hits, False
