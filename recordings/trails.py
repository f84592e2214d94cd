"""A session's audit trail as audited-connections serves it: access roles, tags, the two-step
downloads of channel logs and transferred files, and the logs themselves.

Channel logs are read from the recording, the one record of a terminal channel's bytes. The
document's SSH event types map onto what PAM records:

- ``stdout``: the target's output (asciicast "o" events);
- ``stdin``: the moment Enter was pressed ("m" markers), with no data: keystrokes are never
  recorded (they carry passwords typed at prompts), so a log never holds them;
- ``forward-request``: a window change from the client ("r" events, ``window-change COLSxROWS``),
  the channel request an SSH client sends for it;
- ``stderr`` and the other request, reply and channel events: none (a terminal channel merges
  stderr into its output; forwardings are tunnels, not session channels).

A channel with no recording (an ``sftp`` channel, or an unrecorded session) has no log: its
files are its ``transferred_files``.
"""

import hashlib
import uuid
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from pam.exceptions import InvalidInput
from recordings.choices import DownloadKind
from recordings.models import DownloadTicket, TrailAccessRole, TrailTag

EVENT_TYPES = (
    "stdin", "stdout", "stderr", "forward-request", "reverse-request", "forward-reply", "reverse-reply",
    "forward-global-request", "reverse-global-request", "forward-new-channel-request",
    "reverse-new-channel-request", "forward-global-reply", "reverse-global-reply",
    "forward-new-channel-reply", "reverse-new-channel-reply",
)
LOG_FORMATS = ("jsonl", "hex")
MAX_TAGS = 50
MAX_TAG = 64
STREAM_BLOCK = 64 * 1024


def _audit(action, actor, session, ip, details):
    record_event(action=action, user=actor, object_type="session", object_name=str(session.pk), ip=ip, details=details)


# --- access roles ---------------------------------------------------------------------------


def grant_access(*, actor, session, role, ip=None):
    """Let members of ``role`` read the session's trail and recording."""
    try:
        with transaction.atomic():
            TrailAccessRole.objects.create(session=session, role=role, added_by=actor)
            _audit(AuditAction.TRAIL_ACCESS_CHANGED, actor, session, ip, f"granted to {role.pk}")
    except IntegrityError:
        pass  # granted already: the document's PUT-like POST is idempotent


def revoke_access(*, actor, session, role, ip=None):
    with transaction.atomic():
        if TrailAccessRole.objects.filter(session=session, role=role).delete()[0]:
            _audit(AuditAction.TRAIL_ACCESS_CHANGED, actor, session, ip, f"revoked from {role.pk}")


def revoke_access_everywhere(*, actor, role, ip=None):
    """Withdraw ``role``'s access from every trail; return how many lost it."""
    with transaction.atomic():
        count = TrailAccessRole.objects.filter(role=role).delete()[0]
        record_event(
            action=AuditAction.TRAIL_ACCESS_CHANGED, user=actor, object_type="role", object_name=role.pk, ip=ip,
            details=f"revoked from all trails ({count})",
        )
    return count


# --- tags -----------------------------------------------------------------------------------


def replace_tags(*, actor, session, tags, ip=None):
    """Make ``tags`` the session's tags (trimmed, de-duplicated, case kept)."""
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidInput("Send a JSON array of tag names.")
    names = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    if len(names) > MAX_TAGS:
        raise InvalidInput(f"At most {MAX_TAGS} tags.")
    if any(len(name) > MAX_TAG for name in names):
        raise InvalidInput(f"A tag has at most {MAX_TAG} characters.")
    with transaction.atomic():
        TrailTag.objects.filter(session=session).exclude(name__in=names).delete()
        kept = set(TrailTag.objects.filter(session=session).values_list("name", flat=True))
        TrailTag.objects.bulk_create([TrailTag(session=session, name=name) for name in names if name not in kept])
        _audit(AuditAction.TRAIL_TAGS_CHANGED, actor, session, ip, ", ".join(names))
    return names


# --- two-step downloads ---------------------------------------------------------------------


def _digest(ticket):
    return hashlib.sha256(ticket.encode()).hexdigest()


def issue_ticket(*, user, session, channel, file=None):
    """A download id for ``user`` alone, usable once within TRAIL_DOWNLOAD_TTL seconds."""
    ticket = str(uuid.uuid4())  # 122 random bits from os.urandom, in the document's UUID shape
    now = timezone.now()
    DownloadTicket.objects.filter(expires_at__lt=now).delete()
    DownloadTicket.objects.create(
        digest=_digest(ticket), user=user, kind=DownloadKind.FILE if file else DownloadKind.LOG, session=session,
        channel=channel, file=file, expires_at=now + timedelta(seconds=settings.TRAIL_DOWNLOAD_TTL),
    )
    return ticket


def spend_ticket(*, ticket, user, session, channel, file=None):
    """Use a download id: True once, for the user it was made for and the same download, before it
    expires; False for anything else (unknown, someone else's, used, expired)."""
    matching = DownloadTicket.objects.filter(
        digest=_digest(ticket), user=user, session=session, channel=channel, file=file,
        kind=DownloadKind.FILE if file else DownloadKind.LOG, expires_at__gte=timezone.now(),
    )
    return matching.delete()[0] == 1


def audit_download(*, actor, session, ip, what):
    _audit(AuditAction.TRAIL_DOWNLOADED, actor, session, ip, what)


# --- channel logs ---------------------------------------------------------------------------


def parse_filter(raw):
    """The event types asked for (all when ``raw`` is empty); a 400 naming an unknown one."""
    if not raw:
        return set(EVENT_TYPES)
    asked = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = sorted(asked - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(f"Unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}.", field="filter")
    return asked


def _events(recording):
    """``(offset seconds, type, data)`` of a recording, in the document's event types."""
    with open(recording.path, "rb") as cast:
        cast.readline()
        for raw in cast:
            at, kind, data = orjson.loads(raw)
            if kind == "o":
                yield at, "stdout", data
            elif kind == "m":
                yield at, "stdin", ""
            elif kind == "r":
                yield at, "forward-request", f"window-change {data}"


def log_lines(recording, *, log_format, wanted):
    """The channel log as blocks of bytes: one JSON object a line, or a hex dump of each event."""
    started = recording.started_at
    block = []
    size = 0
    for at, kind, data in _events(recording):
        if kind not in wanted:
            continue
        time = (started + timedelta(seconds=at)).isoformat().replace("+00:00", "Z")
        payload = data.encode()
        if log_format == "jsonl":
            line = orjson.dumps({"time": time, "offset": at, "type": kind, "size": len(payload), "data": data}) + b"\n"
        else:
            line = f"{time} {kind} {len(payload)} bytes\n".encode() + hex_dump(payload)
        block.append(line)
        size += len(line)
        if size >= STREAM_BLOCK:
            yield b"".join(block)
            block, size = [], 0
    if block:
        yield b"".join(block)


def hex_dump(data):
    """``hexdump -C``'s layout: offset, sixteen bytes in hex, the printable ones as text."""
    lines = []
    for offset in range(0, len(data), 16):
        row = data[offset:offset + 16]
        hexes = " ".join(f"{byte:02x}" for byte in row)
        if len(row) > 8:
            hexes = hexes[:23] + " " + hexes[23:]
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in row)
        lines.append(f"{offset:08x}  {hexes:<49} |{text}|\n")
    return "".join(lines).encode()
