import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError

NUL_MESSAGE = "NUL characters (\\u0000) and lone surrogates (\\ud800-\\udfff) are not accepted."
# A JSON string may escape half of a UTF-16 pair alone ("\ud800"): no database driver can encode it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _holds_nul(item):
    """Whether a parsed JSON value, its keys included, holds a NUL character or a lone
    surrogate anywhere."""
    stack = [item]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _refuse_nul(document):
    """Raise a 400 naming the top-level field that holds a NUL, as a field error would."""
    if isinstance(document, dict):
        for key, value in document.items():
            if _holds_nul(key) or _holds_nul(value):
                raise ParseError({_UNSTORABLE.sub("?", key): [NUL_MESSAGE]})
    elif _holds_nul(document):
        raise ParseError(f"JSON parse error - {NUL_MESSAGE}")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing absurdly nested documents, NUL characters (PostgreSQL
    cannot store or even compare them: a lookup with one failed as a 500) and lone surrogates
    (no driver encodes them), with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        _refuse_nul(document)
        return document
