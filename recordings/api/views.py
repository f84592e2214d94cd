"""session-broker's Recordings, refined by ownership, with search and integrity beside them.

- ``GET /api/recordings``: the recordings the caller may read (their own sessions'; those shared
  with their role through the trail's access roles; every one with ``recordings.view_any``),
  filtered and paged. ``GET /api/recordings/search``: lines of those recordings containing a
  substring, each with the second it was shown.
- ``GET /api/recordings/:name``: the asciicast file (``?download=true`` as an attachment);
  ``…/commands``: the commands typed in it, for the player's markers; ``…/integrity``: the file
  checked against its SHA-256 chain. ``DELETE /api/recordings/:name``: admins
  (``recordings.delete``), and only recordings they may read.

A name is looked up as stored, never joined to a path: anything but ``YYYY/MM/DD/<uuid>.cast``
(in whatever encoding it arrives) is a 404 before the database is asked. Playback, downloads,
searches, integrity checks and deletions are in the audit log.
"""

import re

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import client_ip
from accounts.choices import AuditAction
from accounts.permissions import can
from accounts.roles import Perm
from accounts.services.audit import record_event
from pam.exceptions import InvalidInput
from pam.rest.pagination import SessionBrokerPagination
from recordings import search, services
from recordings.api import serializers as s
from recordings.filters import RecordingFilter
from recordings.models import Recording, RecordingCommand

NAME = re.compile(r"\d{4}/\d{2}/\d{2}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.cast")
CAST_TYPE = "application/x-asciicast"


def visible_recordings(user):
    return Recording.objects.visible_to(user).select_related("session__owner", "session__connection")


def recording_named(request, name):
    """The recording ``name`` if the caller may read it; a 404 otherwise, or for a malformed name."""
    if not NAME.fullmatch(name):
        raise Http404("No such recording.")
    return get_object_or_404(visible_recordings(request.user), name=name)


def audit(request, action, recording, details=""):
    record_event(
        action=action, user=request.user, object_type="recording", object_name=recording.name,
        ip=client_ip(request), details=details,
    )


class RecordingListView(generics.ListAPIView):
    serializer_class = s.RecordingSerializer
    pagination_class = SessionBrokerPagination
    filterset_class = RecordingFilter
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Recording.objects.none()
        return visible_recordings(self.request.user).order_by("-started_at", "-pk")

    @extend_schema(
        description="The recordings of the caller's sessions (all of them with `recordings.view_any`), newest "
        "first, a page at a time (`limit`, `offset`; the total in `X-Total-Count`)."
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RecordingSearchView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True, description="A substring, 3 characters or more; case is ignored."),
            OpenApiParameter("offset", int), OpenApiParameter("limit", int, description="Default 50, at most 200."),
        ],
        responses=s.SearchResultSerializer,
        description="Lines of the recordings the caller may read (output and typed commands, as shown on the "
        "screen: colours removed, backspaces and line editing applied) containing `q`, most recently indexed recording first. "
        "Each hit gives the second it was shown, where playback opens. Recordings are searchable once indexed "
        "(`index_status` INDEXED), shortly after their session ends.",
    )
    def get(self, request):
        query = request.query_params.get("q", "").strip()
        if len(query) < search.MIN_QUERY:
            raise InvalidInput(f"Search for {search.MIN_QUERY} characters or more.", field="q")
        if "\x00" in query:
            raise InvalidInput("NUL characters are not accepted.", field="q")
        offset = _number(request, "offset", 0, 0, 1_000_000)
        limit = _number(request, "limit", 50, 1, 200)
        hits, more = search.find(
            query, Recording.objects.visible_to(request.user), offset=offset, limit=limit,
            everything=can(request.user, Perm.RECORDINGS_VIEW_ANY),
        )
        record_event(
            action=AuditAction.RECORDINGS_SEARCHED, user=request.user, object_type="recording",
            ip=client_ip(request), details=query[:200],
        )
        body = {"query": query, "offset": offset, "limit": limit, "more": more, "hits": hits}
        return Response(s.SearchResultSerializer(body).data)


def _number(request, name, default, low, high):
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number.", field=name) from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}.", field=name)
    return value


class RecordingView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW, "delete": Perm.RECORDINGS_DELETE}

    @extend_schema(
        parameters=[OpenApiParameter("download", bool, description="Send as an attachment.")],
        responses={(200, CAST_TYPE): OpenApiTypes.BINARY},
        description="The recording, asciicast v2 (output, resizes, and markers where Enter was pressed; no "
        "keystroke is recorded). Every playback and download is in the audit log.",
    )
    def get(self, request, name):
        recording = recording_named(request, name)
        download = request.query_params.get("download") == "true"
        try:
            stream = open(recording.path, "rb")  # noqa: SIM115 (FileResponse closes it)
        except FileNotFoundError:
            raise Http404("The recording's file is missing.") from None
        audit(request, AuditAction.RECORDING_VIEWED, recording, "downloaded" if download else "played")
        filename = f"{recording.session_id or recording.uid}.cast"
        return FileResponse(stream, content_type=CAST_TYPE, as_attachment=download, filename=filename)

    @extend_schema(responses={204: None}, description="Delete the recording, its chain and its index (audited).")
    def delete(self, request, name):
        recording = recording_named(request, name)
        services.delete_recording(actor=request.user, recording=recording, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecordingCommandsView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    @extend_schema(
        responses=s.CommandSerializer(many=True),
        description="The commands typed in the recording: the line shown each time Enter was pressed (a bare "
        "prompt is left out), with its second. Empty until the recording is indexed.",
    )
    def get(self, request, name):
        recording = recording_named(request, name)
        commands = RecordingCommand.objects.filter(recording=recording).values("at", "text")
        return Response(s.CommandSerializer(commands, many=True).data)


class RecordingIntegrityView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    @extend_schema(
        responses=s.IntegritySerializer,
        description="Check the recording against the SHA-256 chain written with it (16 KiB blocks, each link "
        "covering the previous one) and the final digest kept when it closed: `intact`, or the first altered "
        "offset (the start of the first block that differs).",
    )
    def get(self, request, name):
        recording = recording_named(request, name)
        try:
            verdict = services.verify_recording(recording)
        except FileNotFoundError:
            raise Http404("The recording's file is missing.") from None
        audit(request, AuditAction.RECORDING_VERIFIED, recording, "intact" if verdict.intact else verdict.detail)
        return Response(s.IntegritySerializer({"name": recording.name, **verdict.as_dict()}).data)
