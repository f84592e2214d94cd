"""Substring search over recordings' text: a trigram index over each chunk's words.

Indexing every character of the text as trigrams (FTS5's trigram tokenizer, pg_trgm on the
text) ran at 4-9 MiB of recordings a second (bench/README.md): terminal output repeats its
words (hosts, paths, services, the parts of addresses and timestamps) and a trigram index of the
text pays for every repetition. So each chunk also keeps ``terms``: its distinct words
(runs of letters, digits and dots, lower case: ``10.0.3.7``, ``access.log``, the dots written
as ``q``), each once, between spaces. The trigram index is on ``terms``: pg_trgm GIN on PostgreSQL, an FTS5
trigram table (detail=none, kept in step by triggers) on SQLite, both from this app's
migrations.

A query is cut the same way. Each of its words must be in the chunk's terms: whole if
separators surround it in the query (`` etc `` for ``/etc/shadow``), as a word's start or end
if it touches the query's start or end (`` shadow``). Words that give fewer than three characters to look up are left to the next step. The chunks the index
names are then checked for the query itself, ignoring case: in SQL for the ``contains_text``
lookup (list filters), in Python for the hits of ``find``. tests/recordings/test_terms.py
checks that no substring of a text is ever missed this way.
"""

import re
from dataclasses import dataclass

from django.db import connection as default_connection
from django.db import models, transaction

MIN_QUERY = 3
FTS_TABLE = "recordings_recordingchunk_fts"
# Every ASCII character but letters, digits and the dot separates words, one for one (so
# positions hold). The dot stays inside words, as a "q": "10.0.3.7" and "access.log" are words
# ("10q0q3q7"), where their parts alone ("10", "0", "log") are in nearly every chunk; a letter,
# because pg_trgm cuts words at anything else. A real "q" there only adds candidates, which the
# check against the text removes.
_SEPARATE = str.maketrans({chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) == ".")} | {".": "q"})
_WORD = re.compile(r"\S+")


def terms_of(text):
    """The distinct words of ``text``, lower case, between spaces: what the index holds."""
    return " " + " ".join(dict.fromkeys(text.lower().translate(_SEPARATE).split())) + " "


def term_patterns(query):
    """What a chunk's terms must contain for ``query`` to be in its text: a substring for each
    word of the query that gives three characters or more."""
    lowered = query.lower()
    patterns = []
    for word in _WORD.finditer(lowered.translate(_SEPARATE)):
        pattern = ("" if word.start() == 0 else " ") + word.group() + ("" if word.end() == len(lowered) else " ")
        if len(pattern) >= 3:
            patterns.append(pattern)
    return list(dict.fromkeys(patterns))


def _like(value):
    return "%" + re.sub(r"([\\%_])", r"\\\1", value) + "%"


class SearchableText(models.TextField):
    """A TextField with the ``contains_text`` lookup (``text__contains_text="…"``): the chunk
    holds the string, ignoring case, found through the trigram index on its terms."""


@SearchableText.register_lookup
class ContainsText(models.Lookup):
    lookup_name = "contains_text"

    def as_sql(self, compiler, connection):
        raise NotImplementedError(f"No trigram index on {connection.vendor}.")

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        terms = f"{compiler.quote_name_unless_alias(self.lhs.alias)}.{connection.ops.quote_name('terms')}"
        patterns = term_patterns(self.rhs)
        conditions = [f"{terms} LIKE %s" for _ in patterns] + [f"{lhs} ILIKE %s"]
        return " AND ".join(conditions), [*(_like(p) for p in patterns), *lhs_params, _like(self.rhs)]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        sql, params = f"{lhs} LIKE %s ESCAPE '\\'", [*lhs_params, _like(self.rhs)]
        patterns = term_patterns(self.rhs)
        if patterns:
            row_id = f"{compiler.quote_name_unless_alias(self.lhs.alias)}.{connection.ops.quote_name('id')}"
            likes = " AND ".join("terms LIKE %s" for _ in patterns)
            sql = f"{row_id} IN (SELECT rowid FROM {FTS_TABLE} WHERE {likes}) AND {sql}"
            params = [*(_like(p) for p in patterns), *params]
        return sql, params


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


BATCH = 200  # matching chunks looked at per query to the index
MAX_BATCHES = 50  # per search: 10,000 chunks, about 600 MiB of text


def candidate_batches(query, *, within=None, batch=BATCH):
    """Batches of ids of chunks whose terms hold every pattern of ``query``, highest (most
    recently indexed) first: candidates, to be checked for the query itself. ``within``, a
    queryset of recordings, keeps to their chunks inside the query, so a caller who may read
    few recordings never has the others' candidates checked.

    On SQLite the FTS5 table is asked batch by batch, its rowid order and limit applied inside
    the index: for a caller who reads every recording, a common string costs a batch, not every
    match in the corpus. PostgreSQL answers them all at once from the GIN index (asked again
    for each batch, it checked every candidate's terms again).
    """
    from recordings.models import RecordingChunk

    table = RecordingChunk._meta.db_table
    patterns = term_patterns(query)
    likes = " AND ".join("terms LIKE %s" for _ in patterns)
    liked = [_like(p) for p in patterns]
    conditions, params = [], []
    if within is not None:
        recordings_sql, recordings_params = within.values("pk").query.sql_with_params()
        conditions.append(f"recording_id IN ({recordings_sql})")
        params += recordings_params
    if patterns and default_connection.vendor == "postgresql":
        # The chunks' terms live out of line (TOAST), so the planner prices a scan reading every
        # one of them as cheap as the index: the index is used, and its candidates taken whole.
        where = " AND ".join([likes, *conditions])
        ids = _ids(
            f"WITH candidates AS MATERIALIZED (SELECT id FROM {table} WHERE {where}) "
            "SELECT id FROM candidates ORDER BY id DESC",
            [*liked, *params], no_seqscan=True,
        )
        for start in range(0, len(ids), batch):
            yield ids[start:start + batch]
        return
    if patterns and default_connection.vendor == "sqlite":
        if within is None:
            sql, key, params = f"SELECT rowid FROM {FTS_TABLE} WHERE {likes}", "rowid", liked
        else:
            conditions.append(f"id IN (SELECT rowid FROM {FTS_TABLE} WHERE {likes})")
            sql, key, params = f"SELECT id FROM {table} WHERE {' AND '.join(conditions)}", "id", [*params, *liked]
    else:
        sql, key = f"SELECT id FROM {table} WHERE {' AND '.join(conditions) or 'TRUE'}", "id"
    before = None
    while True:
        bound = "" if before is None else f" AND {key} < %s"
        ids = _ids(f"{sql}{bound} ORDER BY {key} DESC LIMIT %s", [*params, *([] if before is None else [before]), batch])
        if not ids:
            return
        yield ids
        before = ids[-1]


def _ids(sql, params, no_seqscan=False):
    with transaction.atomic(), default_connection.cursor() as cursor:
        if no_seqscan:
            cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def find(query, recordings, *, offset=0, limit=50, per_recording=None, everything=False):
    """The lines of ``recordings`` (a queryset) containing ``query``, most recently indexed
    recording first (recordings are indexed as their sessions end), in order within each: up to
    ``limit`` hits after the first ``offset``, and whether more follow. ``per_recording`` caps
    the hits taken from one recording; ``everything`` says ``recordings`` is every recording.

    One search checks at most MAX_BATCHES batches of candidates: past them it answers with the
    hits found and says more may follow, so no request walks an unbounded corpus.
    """
    from recordings.models import RecordingChunk

    hits, skipped, taken = [], 0, {}
    lowered = query.lower()
    within = None if everything else recordings
    batches = candidate_batches(query, within=within)
    for _ in range(MAX_BATCHES):
        ids = next(batches, None)
        if ids is None:
            return hits, False
        # The candidates' text alone first: most hold every word but not the query itself.
        texts = RecordingChunk.objects.filter(id__in=ids, recording__in=recordings).values_list("id", "text")
        found = [chunk_id for chunk_id, text in texts if lowered in text.lower()]
        chunks = (
            RecordingChunk.objects.filter(id__in=found)
            .select_related("recording__session__owner", "recording__session__connection")
            .order_by("-recording_id", "seq")
        )
        for chunk in chunks:
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
    return hits, True
