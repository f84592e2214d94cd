"""audited-connections.txt, on PAM's sessions: each session is an audited connection.

The document describes another product's proxy; its fields map onto a session like this:

- ``id``: the session id; ``proxy_id``: the node that held it; ``type``: its protocol, upper case;
- ``authentication_method``: how PAM signed in to the target: ``PASSWORD``, ``PUBLIC_KEY``,
  ``EPHEMERAL_KEY`` (a keypair made for the session) or ``NONE``;
- ``user_data``/``user_roles``: the session's owner (id, email) and their role (roles are named:
  a role's id is its name); ``target_host_data``: the saved connection (id, name) or, for an
  ad-hoc session, the host; ``target_host_roles``: the roles the connection is shared with;
  ``access_group_id``: the connection's folder;
- ``status``: ``CONNECTING`` (waiting for the terminal, or connecting), ``CONNECTED``,
  ``DISCONNECTED`` (ended, terminated, lost with its node) or ``FAILED``; ``force_disconnect``:
  when someone ended it (the terminate of session-broker, or ``…/disconnect`` here);
  ``duration``: ``PT<hours>:<minutes>:<seconds>`` as the document writes it;
- ``audit_enabled``: whether it is recorded; ``index_status``: its recording's place in the
  search index (NOT_INDEXED without a recording);
- ``trail.channels``: the terminal channel (``shell``, ``telnet``) with the recording as its
  ``protocol_file``, and the ``sftp`` channel of drive transfers with its ``transferred_files``.
  ``direction`` is 0 for client to target (an upload) and 1 for target to client. Each file also
  says its ``path``, ``sha256`` and whether its content was kept (``content_kept``); the
  protocol file says its chain digest (``sha256``);
- ``mode``: how the session was reached: ``WEB`` (the console or the API) for every session today.

Beyond the document: ``POST …/connections/{id}/disconnect`` ends a live session now (status
DISCONNECTED within a second; the owner with ``sessions.terminate_own``, others with
``sessions.terminate_any``). Reading needs ``recordings.view`` and sees the trails the caller may
(their own, those shared with their role, all with ``recordings.view_any``); granting access,
revoking it and tagging need ``recordings.view_any``. Search filters on times take
``{"from": <ISO 8601>, "to": <ISO 8601>}``, either end optional. ``fuzzycount`` is accepted and
the count is always exact. Searches, downloads, grants and tags are in the audit log.
"""

import ipaddress
import re
import uuid
from datetime import UTC

from django.db.models import Prefetch, Q
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
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
from connections.models import Share
from pam.exceptions import InvalidInput
from recordings import search, trails, transfers
from recordings.choices import IndexStatus
from recordings.filters import in_utc
from recordings.models import RecordingChunk, TrailAccessRole, TrailTag, visible_trails
from sessions.choices import LIVE_STATUSES, Status
from sessions.models import SessionChannel, TransferredFile
from sessions.services import lifecycle

STATUS_NAMES = {
    Status.PENDING: "CONNECTING", Status.CONNECTING: "CONNECTING", Status.ACTIVE: "CONNECTED",
    Status.ENDED: "DISCONNECTED", Status.TERMINATED: "DISCONNECTED", Status.LOST: "DISCONNECTED",
    Status.FAILED: "FAILED",
}
STATUSES_NAMED = {name: [s for s, n in STATUS_NAMES.items() if n == name] for name in dict.fromkeys(STATUS_NAMES.values())}
MODES = ("WEB",)
# sortkey: the document's property names onto session fields.
SORT_KEYS = {
    "id": "id", "type": "session_type", "status": "status", "connected": "started_at",
    "disconnected": "ended_at", "created": "created_at", "updated": "last_activity",
    "last_activity": "last_activity", "bytes_in": "bytes_in", "bytes_out": "bytes_out",
    "remote_address": "client_ip", "target_host_address": "host", "target_host_account": "username",
    "user_display_name": "owner__email", "proxy_id": "node",
}
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_OFFSET = 10**9


def _time(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def _duration(session):
    if not session.started_at:
        return None
    seconds = int(((session.ended_at or session.last_activity or session.started_at) - session.started_at).total_seconds())
    return f"PT{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def represent(session):
    """One audited connection, as the document shows it."""
    connection = session.connection
    recording = getattr(session, "recording", None)
    live = session.status in LIVE_STATUSES
    channels = []
    for channel in session.trail_channels.all():
        is_terminal = channel.kind != transfers.CHANNEL_KIND
        bytes_in, bytes_out = channel.bytes_in, channel.bytes_out
        if is_terminal and channel.closed_at is None:
            bytes_in, bytes_out = session.bytes_in, session.bytes_out  # saved every few seconds while live
        channels.append({
            "id": str(channel.pk),
            "type": channel.kind,
            "bytes_client_to_server": bytes_in,
            "bytes_server_to_client": bytes_out,
            "protocol_file": _protocol_file(recording) if is_terminal and recording else None,
            "transferred_files": [_transferred(file) for file in channel.files.all()],
        })
    role_shares = [share for share in connection.shares.all() if share.role_id] if connection else []
    return {
        "id": str(session.pk),
        "proxy_id": session.node or None,
        "type": session.session_type.upper(),
        "authentication_method": [session.auth_method.upper()],
        "user_data": {"id": str(session.owner_id), "display_name": session.owner.email},
        "user_roles": [{"id": session.owner.role_id, "name": session.owner.role_id}],
        "target_host_data": {
            "id": connection.pk if connection else None,
            "common_name": connection.name if connection else session.host,
        },
        "target_host_address": session.host,
        "target_host_account": session.username,
        "target_host_roles": [{"id": share.role_id, "name": share.role_id} for share in role_shares],
        "remote_address": session.client_ip,
        "connected": _time(session.started_at),
        "disconnected": None if live else _time(session.ended_at),
        "duration": _duration(session),
        "status": STATUS_NAMES.get(session.status, "DISCONNECTED"),
        "last_activity": _time(session.last_activity),
        "bytes_in": session.bytes_in,
        "bytes_out": session.bytes_out,
        "force_disconnect": _time(session.ended_at) if session.ended_by_id or session.status == Status.TERMINATED else None,
        "created": _time(session.created_at),
        "updated": _time(session.ended_at or session.last_activity or session.created_at),
        "updated_by": str(session.ended_by_id) if session.ended_by_id else None,
        "audit_enabled": session.recording_enabled,
        "access_group_id": connection.group_id if connection else None,
        "trail": {
            "connection_id": str(session.pk),
            "host_id": connection.pk if connection else None,
            "user_id": str(session.owner_id),
            "protocol": session.session_type,
            "channels": channels,
        },
        "index_status": recording.index_status if recording else IndexStatus.NOT_INDEXED.value,
        "access_roles": [
            {"added": _time(grant.added), "id": grant.role_id, "name": grant.role_id} for grant in session.trail_access.all()
        ],
        "tags": [tag.name for tag in session.trail_tags.all()],
        "mode": "WEB",
    }


def _protocol_file(recording):
    return {
        "id": str(recording.uid), "name": recording.name, "offset": 0, "direction": 1,
        "open_time": _time(recording.started_at), "close_time": _time(recording.ended_at),
        "payload_size": recording.size, "closed": recording.ended_at is not None,
        "status": "OK" if recording.ended_at else "OPEN", "sha256": recording.digest or None,
    }


def _transferred(file):
    return {
        "id": str(file.pk), "name": file.name, "path": file.path, "offset": 0,
        "direction": 0 if file.direction == "upload" else 1,
        "open_time": _time(file.opened_at), "close_time": _time(file.closed_at), "payload_size": file.size,
        "closed": file.closed_at is not None, "status": file.status.upper(), "sha256": file.sha256,
        "content_kept": bool(file.stored),
    }


def trails_for(user):
    return (
        visible_trails(user)
        .select_related("owner", "connection", "recording")
        .prefetch_related(
            Prefetch("connection__shares", queryset=Share.objects.filter(role__isnull=False)),
            Prefetch("trail_channels", queryset=SessionChannel.objects.prefetch_related("files")),
            "trail_access", "trail_tags",
        )
    )


def _page(request):
    params = {**request.query_params.dict(), **(request.data if isinstance(request.data, dict) else {})}
    try:
        offset = int(params.get("offset", 0))
        limit = int(params.get("limit", DEFAULT_LIMIT))
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput("offset and limit are whole numbers.") from None
    if not 0 <= offset <= MAX_OFFSET or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"offset between 0 and {MAX_OFFSET}; limit between 1 and {MAX_LIMIT}.")
    key = str(params.get("sortkey", "id"))
    if key not in SORT_KEYS:
        raise InvalidInput(f"Unknown sortkey {key!r}; one of {', '.join(SORT_KEYS)}.", field="sortkey")
    direction = str(params.get("sortdir", "ASC")).upper()
    if direction not in ("ASC", "DESC"):
        raise InvalidInput("sortdir is ASC or DESC.", field="sortdir")
    order = SORT_KEYS[key] if direction == "ASC" else f"-{SORT_KEYS[key]}"
    return offset, limit, [order, "pk"]


def listed(request, sessions):
    offset, limit, order = _page(request)
    sessions = sessions.order_by(*order)
    return {"count": sessions.count(), "items": [represent(s) for s in sessions[offset:offset + limit]]}


# --- search ---------------------------------------------------------------------------------


def _strings(body, name):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(f"{name} is an array of strings.", field=name)
    return value


def _range(body, name, field):
    value = body.get(name)
    if value is None:
        return Q()
    if not isinstance(value, dict) or not set(value) <= {"from", "to"}:
        raise InvalidInput(f'{name} is {{"from": <ISO 8601>, "to": <ISO 8601>}}.', field=name)
    condition = Q()
    for end, lookup in (("from", "gte"), ("to", "lte")):
        if value.get(end) is None:
            continue
        try:
            moment = parse_datetime(value[end]) if isinstance(value[end], str) else None
            if moment is not None:
                moment = in_utc(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        except ValueError:
            moment = None
        if moment is None:
            raise InvalidInput(f"{name}.{end} is an ISO 8601 date and time.", field=name)
        condition &= Q(**{f"{field}__{lookup}": moment})
    return condition


def _uuids(values, name):
    try:
        return [uuid.UUID(value) for value in values]
    except ValueError:
        raise InvalidInput(f"{name} holds ids (UUIDs).", field=name) from None


MAX_KEYWORDS = 10


def _keyword(word):
    """Sessions matching one keyword. Tags and recorded text are subqueries of their own: joined
    in, every keyword multiplied the rows by the session's chunks and tags."""
    match = (
        Q(owner__email__icontains=word) | Q(host__icontains=word) | Q(username__icontains=word)
        | Q(session_type__icontains=word) | Q(status__icontains=word) | Q(node__icontains=word)
        | Q(connection__name__icontains=word) | Q(client_ip__contains=word) | Q(owner__role__name__icontains=word)
        | Q(pk__in=TrailTag.objects.filter(name__icontains=word).values("session_id"))
    )
    try:
        match |= Q(pk=uuid.UUID(word))
    except ValueError:
        pass
    if len(word) >= search.MIN_QUERY:
        recorded = RecordingChunk.objects.filter(text__contains_text=word).values("recording__session_id")
        match |= Q(pk__in=recorded)
    return match


def filtered(sessions, body):
    """The sessions matching a search body's filters (every one given must match)."""
    if not isinstance(body, dict):
        raise InvalidInput("Send the filters as a JSON object.")
    condition = Q()
    keywords = body.get("keywords")
    if keywords is not None:
        if not isinstance(keywords, str):
            raise InvalidInput("keywords is a string.", field="keywords")
        words = list(dict.fromkeys(w for w in re.split(r"[,\s]+", keywords) if w))
        if len(words) > MAX_KEYWORDS:
            raise InvalidInput(f"At most {MAX_KEYWORDS} keywords.", field="keywords")
        for word in words:
            condition &= _keyword(word)
    plain = {
        "proxy_id": "node", "user_display_name": "owner__email", "user_roles": "owner__role_id",
        "target_host_id": "connection_id", "target_host_address": "host", "target_host_account": "username",
    }
    if (values := _strings(body, "remote_address")) is not None:
        try:
            condition &= Q(client_ip__in=[str(ipaddress.ip_address(v)) for v in values])
        except ValueError:
            raise InvalidInput("remote_address holds IP addresses.", field="remote_address") from None
    for name, field in plain.items():
        values = _strings(body, name)
        if values is not None:
            condition &= Q(**{f"{field}__in": values})
    if (values := _strings(body, "id")) is not None:
        condition &= Q(pk__in=_uuids(values, "id"))
    if (values := _strings(body, "user_id")) is not None:
        condition &= Q(owner_id__in=[n for n in map(_number, values) if n is not None])
    if (values := _strings(body, "type")) is not None:
        condition &= Q(session_type__in=[v.lower() for v in values])
    if (values := _strings(body, "authentication_method")) is not None:
        condition &= Q(auth_method__in=[v.lower() for v in values])
    if (values := _strings(body, "status")) is not None:
        unknown = [v for v in values if v not in STATUSES_NAMED]
        if unknown:
            raise InvalidInput(f"Unknown status {unknown[0]!r}; one of {', '.join(STATUSES_NAMED)}.", field="status")
        condition &= Q(status__in=[s for v in values for s in STATUSES_NAMED[v]])
    if (values := _strings(body, "target_host_roles")) is not None:
        condition &= Q(connection__in=Share.objects.filter(role_id__in=values).values("connection_id"))
    if (values := _strings(body, "access_roles")) is not None:
        condition &= Q(pk__in=TrailAccessRole.objects.filter(role_id__in=values).values("session_id"))
    if (values := _strings(body, "tags")) is not None:
        condition &= Q(pk__in=TrailTag.objects.filter(name__in=values).values("session_id"))
    if (values := _strings(body, "mode")) is not None:
        condition &= Q() if set(values) & set(MODES) else Q(pk__in=[])
    if "has_access_roles" in body:
        if not isinstance(body["has_access_roles"], bool):
            raise InvalidInput("has_access_roles is true or false.", field="has_access_roles")
        granted = Q(pk__in=TrailAccessRole.objects.values("session_id"))
        condition &= granted if body["has_access_roles"] else ~granted
    if "force_disconnect" in body:
        forced = str(body["force_disconnect"]).lower()
        if forced not in ("true", "false"):
            raise InvalidInput('force_disconnect is "true" or "false".', field="force_disconnect")
        ended_by_someone = Q(status=Status.TERMINATED)
        condition &= ended_by_someone if forced == "true" else ~ended_by_someone
    condition &= _range(body, "connected", "started_at")
    condition &= _range(body, "disconnected", "ended_at")
    condition &= _range(body, "last_activity", "last_activity")
    return sessions.filter(condition)


# --- views ----------------------------------------------------------------------------------

PAGE = [
    OpenApiParameter("offset", int, description="Default 0."),
    OpenApiParameter("limit", int, description=f"Default {DEFAULT_LIMIT}, at most {MAX_LIMIT}."),
    OpenApiParameter("sortkey", str, description=f"One of {', '.join(SORT_KEYS)}; default id."),
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

    @extend_schema(operation_id="audited_connection_list_get", tags=["audited-connections"], parameters=PAGE, responses=LIST_RESPONSE, description=__doc__)
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


def _number(text):
    """``text`` as a row id, or None: ASCII digits only (``"²".isdigit()`` is true), and short."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _channel(session, channel_id):
    if _number(channel_id) is None:
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
        offset, limit, _ = _page(request)
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
