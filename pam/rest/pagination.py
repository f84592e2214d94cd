"""Paging of session-broker lists: ``limit`` and ``offset`` in the query, a bare JSON array back.

session-broker.txt pages its lists with ``limit`` (default 200, at most 1000; ``GET
/api/admin/token-audit``) and answers arrays, so existing clients keep reading an array; the
total and the neighbouring pages travel in headers (``X-Total-Count``, RFC 8288 ``Link``).
"""

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response


class SessionBrokerPagination(LimitOffsetPagination):
    default_limit = 200
    max_limit = 1000

    def get_paginated_response(self, data):
        links = [f'<{url}>; rel="{rel}"' for rel, url in (("next", self.get_next_link()),
                                                          ("prev", self.get_previous_link())) if url]
        headers = {"X-Total-Count": str(self.count)}
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema):
        return schema
