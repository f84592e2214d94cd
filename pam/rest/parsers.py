from rest_framework import parsers
from rest_framework.exceptions import ParseError

NUL_MESSAGE = "NUL characters (\\u0000) are not accepted."


def _holds_nul(item):
    """Whether a parsed JSON value, its keys included, holds a NUL character anywhere."""
    stack = [item]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
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
                raise ParseError({key.replace("\x00", "\\u0000"): [NUL_MESSAGE]})
    elif _holds_nul(document):
        raise ParseError(f"JSON parse error - {NUL_MESSAGE}")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing absurdly nested documents, and NUL characters (PostgreSQL
    cannot store or even compare them: a lookup with one failed as a 500), with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        _refuse_nul(document)
        return document
