from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _has_nul(document):
    """Whether any key or string in a parsed JSON document holds a NUL character."""
    stack = [document]
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


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing absurdly nested documents, and NUL characters (PostgreSQL
    cannot store or even compare them: a lookup with one failed as a 500), with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        if _has_nul(document):
            raise ParseError("JSON parse error - NUL characters (\\u0000) are not accepted.")
        return document
