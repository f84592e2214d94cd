"""One error shape for every API: ``{"error": "<message>"}``, plus ``"fields"`` for bad input.

DRF exceptions, service errors and Django's own 400/403/404/500 and CSRF failures all answer
JSON on API paths, so a client never has to parse an HTML error page. A request that failed
because PostgreSQL or Redis is down answers 503, on every path, never 500.
"""

import sys
from contextlib import contextmanager

from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import HttpResponse, JsonResponse
from django.views import defaults
from django.views.csrf import csrf_failure as html_csrf_failure
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from pam.exceptions import ServiceError
from pam.outages import is_outage

API_PREFIXES = ("/api/", "/connection-manager/")


def is_api_path(path):
    return path.startswith(API_PREFIXES) or path == "/api"


def _first_message(data, path=""):
    """Return ``"path: message"`` for the first error in DRF's nested error data."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list) and data and not all(isinstance(item, str) for item in data):
        items = enumerate(data)
    else:
        message = data[0] if isinstance(data, list) and data else data
        return f"{path}: {message}" if path else str(message)
    for key, value in items:
        if key == "non_field_errors":
            step = path
        elif isinstance(key, int) or str(key).isdigit():
            step = f"{path}[{key}]"
        else:
            step = f"{path}.{key}" if path else str(key)
        message = _first_message(value, step)
        if message:
            return message
    return ""


def error_body(data):
    """Turn DRF's error data into ``{"error": …}``, keeping per-field details under ``fields``."""
    if isinstance(data, dict) and set(data) == {"detail"}:
        return {"error": str(data["detail"])}
    if isinstance(data, dict):
        return {"error": _first_message(data) or "Invalid input.", "fields": data}
    return {"error": _first_message(data) or "Invalid input."}


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        set_rollback()
        if not exc.field:
            return Response({"error": exc.message}, status=exc.status_code)
        return Response(
            {"error": f"{exc.field}: {exc.message}", "fields": {exc.field: [exc.message]}}, status=exc.status_code
        )
    if isinstance(exc, ProtectedError):
        set_rollback()
        return Response({"error": "Still in use; remove what refers to it first."}, status=409)
    if isinstance(exc, IntegrityError):
        set_rollback()
        return Response({"error": "Conflicts with existing data."}, status=409)
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(response.data)
    return response


@contextmanager
def renamed_fields(names):
    """Report a service error's field path (``jump_hosts[1].private_key``) with the names this
    API document uses for each part (``jumpHosts[1].privateKey``)."""
    try:
        yield
    except ServiceError as exc:
        if exc.field:
            exc.field = ".".join(_rename(part, names) for part in exc.field.split("."))
        raise


def _rename(part, names):
    name, bracket, index = part.partition("[")
    return names.get(name, name) + bracket + index


def _json_or(default_view, status_code, message):
    def view(request, *args, **kwargs):
        if is_api_path(request.path):
            return JsonResponse({"error": message}, status=status_code)
        return default_view(request, *args, **kwargs)

    return view


bad_request = _json_or(defaults.bad_request, status.HTTP_400_BAD_REQUEST, "Bad request.")
permission_denied = _json_or(defaults.permission_denied, status.HTTP_403_FORBIDDEN, "Permission denied.")
page_not_found = _json_or(defaults.page_not_found, status.HTTP_404_NOT_FOUND, "Not found.")
_internal_error = _json_or(defaults.server_error, status.HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error.")
UNAVAILABLE_MESSAGE = "PAM cannot reach its database or Redis right now; try again in a moment."


def server_error(request, *args, **kwargs):
    """A 500, unless the request failed because a backing service is down: then a 503.

    Django calls this while handling the exception, so it is still the current one.
    """
    if is_outage(sys.exc_info()[1]):
        if is_api_path(request.path):
            return JsonResponse({"error": UNAVAILABLE_MESSAGE}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return HttpResponse(UNAVAILABLE_MESSAGE, status=status.HTTP_503_SERVICE_UNAVAILABLE, content_type="text/plain")
    return _internal_error(request, *args, **kwargs)


def csrf_failure(request, reason=""):
    if is_api_path(request.path):
        return JsonResponse({"error": f"CSRF check failed: {reason}"}, status=403)
    return html_csrf_failure(request, reason=reason)
