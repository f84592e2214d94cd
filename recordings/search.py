"""Substring search over recordings' text: a trigram index on RecordingChunk.text.

PostgreSQL: a pg_trgm GIN index, queried with ``ILIKE``. SQLite: an FTS5 table with the trigram
tokenizer over the chunk table's text (external content, kept in step by triggers), queried
with a phrase, which for trigrams is exactly "contains, ignoring case". Both come from this
app's migrations; the ``contains`` lookup below is the one place that speaks either dialect.

A query needs three characters at least: shorter ones have no trigram to look up, and would
read every chunk.
"""

import re

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
