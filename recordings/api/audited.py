"""The audited-connections API's views (audited-connections.txt, at
/connection-manager/api/v1/; routes in pam.api.audited_connections). What each field means for
a PAM session, and the listing and search, are in recordings.api.audited_listing."""

import uuid

from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import client_ip
from accounts.choices import AuditAction
from accounts.models import Role
from accounts.roles import Perm
from accounts.services.audit import record_event
from pam.exceptions import InvalidInput
from recordings import trails, transfers
from recordings.api import audited_listing as listing
from recordings.api.audited_listing import filtered, listed, page_of, represent, row_number, trails_for
from recordings.models import TrailTag, visible_trails
from sessions.choices import LIVE_STATUSES
from sessions.models import SessionChannel, TransferredFile
from sessions.services import lifecycle

PAGE = [
    OpenApiParameter("offset", int, description="Default 0."),
    OpenApiParameter("limit", int, description=f"Default {listing.DEFAULT_LIMIT}, at most {listing.MAX_LIMIT}."),
    OpenApiParameter("sortkey", str, description=f"One of {', '.join(listing.SORT_KEYS)}; default id."),
    OpenApiParameter("sortdir", str, enum=["ASC", "DESC"]),
    OpenApiParameter("fuzzycount", bool, description="Accepted; the count is always exact."),
]
LIST_RESPONSE = inline_serializer(
    "AuditedConnectionList", {"count": serializers.IntegerField(), "items": serializers.ListField(child=serializers.DictField())}
)
TICKET = inline_serializer("DownloadId", {"session_id": serializers.UUIDField()})


def trail_of(request, connection_id):
    try:
        key = uuid.UUID(connection_id)
    except ValueError:
        raise Http404("No such connection.") from None
    return get_object_or_404(trails_for(request.user), pk=key)


class AuditedConnectionListView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    @extend_schema(operation_id="audited_connection_list_get", tags=["audited-connections"], parameters=PAGE, responses=LIST_RESPONSE, description=listing.__doc__)
    def get(self, request):
        return Response(listed(request, trails_for(request.user)))


class AuditedConnectionSearchView(APIView):
    required_perms = {"post": Perm.RECORDINGS_VIEW}

    @extend_schema(operation_id="audited_connection_search_post", tags=["audited-connections"],
        parameters=PAGE, request=OpenApiTypes.OBJECT, responses=LIST_RESPONSE,
        description="Every filter given must match. `keywords` (comma or space separated) each match an "
        "attribute (user, host, account, type, status, node, connection name, tag, address, role, id) or, from "
        "3 characters, the recorded text. Times are `{\"from\", \"to\"}` ranges. Audited.",
    )
    def post(self, request):
        sessions = filtered(trails_for(request.user), request.data)
        body = listed(request, sessions)
        record_event(
            action=AuditAction.RECORDINGS_SEARCHED, user=request.user, object_type="session", ip=client_ip(request),
            details=str(request.data.get("keywords") or "")[:200] if isinstance(request.data, dict) else "",
        )
        return Response(body)


class AuditedConnectionView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    @extend_schema(operation_id="audited_connection_get", tags=["audited-connections"], responses=OpenApiTypes.OBJECT)
    def get(self, request, connection_id):
        return Response(represent(trail_of(request, connection_id)))


class DisconnectView(APIView):
    required_perms = {"post": Perm.SESSIONS_TERMINATE_OWN}

    @extend_schema(operation_id="audited_disconnect_post", tags=["audited-connections"], request=None, responses=OpenApiTypes.OBJECT,
                   description="End a live connection now: it is DISCONNECTED within a second. Audited.")
    def post(self, request, connection_id):
        session = trail_of(request, connection_id)
        if session.status not in LIVE_STATUSES:
            raise InvalidInput("The connection has already ended.")
        lifecycle.terminate_session(actor=request.user, session=session, ip=client_ip(request))
        return Response(represent(trail_of(request, connection_id)))


def _channel(session, channel_id):
    if row_number(channel_id) is None:
        raise Http404("No such channel.")
    return get_object_or_404(SessionChannel, session=session, pk=int(channel_id))


def _file(channel, file_id):
    try:
        key = uuid.UUID(file_id)
    except ValueError:
        raise Http404("No such file.") from None
    return get_object_or_404(TransferredFile, channel=channel, pk=key)


def _recording_of(session, channel):
    recording = getattr(session, "recording", None)
    if channel.kind == transfers.CHANNEL_KIND or recording is None:
        raise Http404("This channel has no log: its files are its transferred_files.")
    return recording


class FileTicketView(APIView):
    required_perms = {"post": Perm.RECORDINGS_VIEW}

    @extend_schema(operation_id="audited_file_ticket_post", tags=["audited-connections"], request=None, responses={201: TICKET},
                   description="A download id for this file's kept content: for the caller alone, once, within a minute.")
    def post(self, request, connection_id, channel_id, file_id):
        session = trail_of(request, connection_id)
        channel = _channel(session, channel_id)
        file = _file(channel, file_id)
        if not file.stored:
            raise Http404("The content of this file was not kept.")
        ticket = trails.issue_ticket(user=request.user, session=session, channel=channel, file=file)
        return Response({"session_id": ticket}, status=status.HTTP_201_CREATED)


class FileDownloadView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    @extend_schema(operation_id="audited_file_download_get", tags=["audited-connections"], responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, connection_id, channel_id, file_id, ticket):
        session = trail_of(request, connection_id)
        channel = _channel(session, channel_id)
        file = _file(channel, file_id)
        if not trails.spend_ticket(ticket=ticket, user=request.user, session=session, channel=channel, file=file):
            raise Http404("No such download: download ids are for their maker, once, within a minute.")
        try:
            content = open(transfers.stored_path(file.stored), "rb")  # noqa: SIM115 (the response closes it)
        except FileNotFoundError:
            raise Http404("The content of this file is gone.") from None
        trails.audit_download(actor=request.user, session=session, ip=client_ip(request), what=f"file {file.path}")
        response = StreamingHttpResponse(iter(lambda: content.read(trails.STREAM_BLOCK), b""),
                                         content_type="application/octet-stream")
        response["Content-Length"] = str(file.size)
        response["Content-Disposition"] = f'attachment; filename="{file.pk}"'
        response["X-Content-SHA256"] = file.sha256
        return response


class LogTicketView(APIView):
    required_perms = {"post": Perm.RECORDINGS_VIEW}

    @extend_schema(operation_id="audited_log_ticket_post", tags=["audited-connections"], request=None, responses={201: TICKET},
                   description="A download id for this channel's log: for the caller alone, once, within a minute.")
    def post(self, request, connection_id, channel_id):
        session = trail_of(request, connection_id)
        channel = _channel(session, channel_id)
        _recording_of(session, channel)
        ticket = trails.issue_ticket(user=request.user, session=session, channel=channel)
        return Response({"session_id": ticket}, status=status.HTTP_201_CREATED)


class LogDownloadView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    def perform_content_negotiation(self, request, force=False):
        # The document's ``format`` (jsonl, hex) is DRF's renderer override parameter too: the log
        # is streamed whatever it says, and errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(operation_id="audited_log_download_get", tags=["audited-connections"],
        parameters=[
            OpenApiParameter("format", str, enum=list(trails.LOG_FORMATS), description="Default hex."),
            OpenApiParameter("filter", str, description="Comma-separated event types (default all): stdout is "
                             "the output, stdin the moments Enter was pressed (no keystroke is recorded), "
                             "forward-request a window change; the document's other types never occur."),
        ],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request, connection_id, channel_id, ticket):
        log_format = request.query_params.get("format", "hex")
        if log_format not in trails.LOG_FORMATS:
            raise InvalidInput("format is jsonl or hex.", field="format")
        wanted = trails.parse_filter(request.query_params.get("filter", ""))
        session = trail_of(request, connection_id)
        channel = _channel(session, channel_id)
        recording = _recording_of(session, channel)
        if not trails.spend_ticket(ticket=ticket, user=request.user, session=session, channel=channel):
            raise Http404("No such download: download ids are for their maker, once, within a minute.")
        if not recording.path.exists():
            raise Http404("The recording of this channel is gone.")
        trails.audit_download(actor=request.user, session=session, ip=client_ip(request),
                              what=f"log of channel {channel.pk} ({log_format})")
        content_type = "application/x-ndjson" if log_format == "jsonl" else "text/plain; charset=utf-8"
        response = StreamingHttpResponse(trails.log_lines(recording, log_format=log_format, wanted=wanted),
                                         content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{session.pk}-{channel.pk}.{log_format}"'
        return response


def _role(role_id):
    if "\x00" in role_id:  # PostgreSQL cannot even compare it
        raise Http404("No such role.")
    return get_object_or_404(Role, pk=role_id)


ROLE_LIST = inline_serializer(
    "AccessRole", {"added": serializers.DateTimeField(), "id": serializers.CharField(), "name": serializers.CharField()},
    many=True,
)


class AccessRolesView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    @extend_schema(operation_id="audited_access_roles_get", tags=["audited-connections"], responses=ROLE_LIST)
    def get(self, request, connection_id):
        return Response(represent(trail_of(request, connection_id))["access_roles"])


class AccessRoleView(APIView):
    required_perms = {"post": Perm.RECORDINGS_VIEW_ANY, "delete": Perm.RECORDINGS_VIEW_ANY}

    @extend_schema(operation_id="audited_access_role_post", tags=["audited-connections"], request=None, responses={204: None},
                   description="Let the role's members read this trail and its recording (audited).")
    def post(self, request, connection_id, role_id):
        session = trail_of(request, connection_id)
        role = _role(role_id)
        trails.grant_access(actor=request.user, session=session, role=role, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="audited_access_role_delete", tags=["audited-connections"], responses={204: None})
    def delete(self, request, connection_id, role_id):
        session = trail_of(request, connection_id)
        role = _role(role_id)
        trails.revoke_access(actor=request.user, session=session, role=role, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccessRoleEverywhereView(APIView):
    required_perms = {"delete": Perm.RECORDINGS_VIEW_ANY}

    @extend_schema(operation_id="audited_access_role_everywhere_delete", tags=["audited-connections"], responses={204: None}, description="Withdraw the role's access from every trail (audited).")
    def delete(self, request, role_id):
        role = _role(role_id)
        trails.revoke_access_everywhere(actor=request.user, role=role, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TagListView(APIView):
    required_perms = {"get": Perm.RECORDINGS_VIEW}

    @extend_schema(operation_id="audited_tag_list_get", tags=["audited-connections"],
        parameters=[*PAGE[:2], PAGE[3], OpenApiParameter("query", str, description="Tags starting with this.")],
        responses=inline_serializer("TagList", {"count": serializers.IntegerField(), "items": serializers.ListField(child=serializers.CharField())}),
    )
    def get(self, request):
        offset, limit, _ = page_of(request)
        descending = request.query_params.get("sortdir", "ASC").upper() == "DESC"
        tags = TrailTag.objects.filter(session__in=visible_trails(request.user).values("pk"))
        prefix = request.query_params.get("query", "")
        if "\x00" in prefix:
            raise InvalidInput("NUL characters are not accepted.", field="query")
        if prefix:
            tags = tags.filter(name__istartswith=prefix)
        names = tags.values_list("name", flat=True).distinct().order_by("-name" if descending else "name")
        return Response({"count": names.count(), "items": list(names[offset:offset + limit])})


class TagsView(APIView):
    required_perms = {"put": Perm.RECORDINGS_VIEW_ANY}

    @extend_schema(operation_id="audited_tags_put", tags=["audited-connections"], request={"application/json": {"type": "array", "items": {"type": "string"}}}, responses={204: None},
                   description="Replace the connection's tags (audited).")
    def put(self, request, connection_id):
        session = trail_of(request, connection_id)
        trails.replace_tags(actor=request.user, session=session, tags=request.data, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
