"""audited-connections.txt, on PAM's sessions: each session is an audited connection, listed,
searched and shown (the views are recordings.api.audited).

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
from django.utils.dateparse import parse_datetime

from connections.models import Share
from pam.exceptions import InvalidInput
from recordings import search, transfers
from recordings.choices import IndexStatus
from recordings.filters import in_utc
from recordings.models import RecordingChunk, TrailAccessRole, TrailTag, visible_trails
from sessions.choices import LIVE_STATUSES, Status
from sessions.models import SessionChannel

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


def page_of(request):
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
    offset, limit, order = page_of(request)
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
        condition &= Q(owner_id__in=[n for n in map(row_number, values) if n is not None])
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


def row_number(text):
    """``text`` as a row id, or None: ASCII digits only (``"²".isdigit()`` is true), and short."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
