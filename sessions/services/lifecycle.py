"""The life of a session after it is opened: claimed by a node, connecting, active, ended.

Every state change of a live session is written here, whichever door it comes through (the
terminal websocket, the REST API, the Django admin, an access revocation, the reaper): the node
runtime (sessions.runtime) and the live session (sessions.live) call these functions and write
no row themselves. So one kind of change is one audit action: an owner's "terminate" from the
terminal and an admin's DELETE are both ``session.terminated``, then ``session.ended`` once the
home node has hung up.

Each function is a conditional UPDATE or runs in one transaction, and is safe to run twice.
"""

from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.permissions import can
from accounts.roles import Perm
from accounts.services.audit import record_event
from pam.exceptions import Forbidden
from recordings import services as recordings
from sessions.choices import LIVE_STATUSES, Access, Status
from sessions.models import Session, SessionChannel, Viewer
from sessions.runtime import messages
from sessions.services import nodes
from sessions.services.sessions import route_for as session_route


def load_session(session_id):
    return Session.objects.select_related("owner").filter(pk=session_id).first()


def claim_session(*, session_id, node_id):
    """Make ``node_id`` the session's home, unless another node is, or it expired unopened."""
    pending = Session.objects.filter(pk=session_id, status=Status.PENDING, node="")
    return pending.exclude(nodes.expired_pending()).update(node=node_id) == 1


def expire_unopened(*, session_id):
    """End the session if nobody opened it in time; return whether it was."""
    return bool(nodes.expire_pending_sessions(session_id=session_id))


def route_for(session_id):
    """The session's Route: where and how to reach its target, with the credentials (server side)."""
    return session_route(Session.objects.select_related("connection").get(pk=session_id))


def ended_among(session_ids):
    """Of these sessions, those the database says have ended: ``{id: (status, message)}``."""
    rows = Session.objects.filter(pk__in=session_ids).exclude(status__in=LIVE_STATUSES)
    return {str(pk): (status, message) for pk, status, message in rows.values_list("pk", "status", "status_message")}


def mark_connecting(*, session_id):
    return _advance(session_id, Status.CONNECTING)


def mark_active(*, session_id, node_id, recording_kind, channel_kind, width, height):
    """The target is reached: wipe the session's one-time secrets, open its trail's channel,
    start its recording, audit.

    Returns ``(writer, recording)``, both None when the session is not recorded.
    """
    now = timezone.now()
    with transaction.atomic():
        session = Session.objects.select_related("owner").get(pk=session_id)
        if channel_kind:
            SessionChannel.objects.create(session=session, kind=channel_kind, opened_at=now)
        writer = recording = None
        if session.recording_enabled and recording_kind:
            writer, recording = recordings.start_recording(
                session=session, kind=recording_kind, width=width, height=height, started_at=now
            )
        _advance(session_id, Status.ACTIVE, started_at=now, secrets="", last_activity=now)
        record_event(
            action=AuditAction.SESSION_STARTED, user=session.owner, object_type="session", object_name=str(session_id),
            ip=session.client_ip, details=f"{session.session_type} {session.target} on {node_id}",
        )
    return writer, recording


def save_counters(*, counters):
    """Keep the byte counters and last activity of live sessions, in one ``executemany``.

    ``counters`` is ``(session id, bytes in, bytes out, last activity in seconds since the
    epoch)`` for each session that changed: a node saves them all at once. Not through the ORM:
    building 200 updates (or one ``bulk_update``) in Python held the GIL for tens of
    milliseconds on the node's database thread every few seconds, and every keystroke echoed
    meanwhile waited for it (the busy sessions' p99 in bench/README.md).
    """
    if not counters:
        return
    fields = [Session._meta.get_field(name) for name in ("bytes_in", "bytes_out", "last_activity", "id")]
    quote = connection.ops.quote_name
    statement = "UPDATE {} SET {} = %s, {} = %s, {} = %s WHERE {} = %s".format(
        quote(Session._meta.db_table), *(quote(field.column) for field in fields)
    )
    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        (
            bytes_in,
            bytes_out,
            adapt(datetime.fromtimestamp(last_activity, tz=UTC)) if last_activity else None,
            fields[3].get_db_prep_value(session_id, connection),
        )
        for session_id, bytes_in, bytes_out, last_activity in counters
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(statement, rows)


def end_session(*, session_id, status, message, bytes_in, bytes_out, channels=(), recording=None):
    """Write the end of the trail; a status set meanwhile (terminated) is kept. Return the session.

    ``channels`` are the streams the session carried, as dicts of SessionChannel fields (the
    one opened with the session, still open, is closed with them); ``recording`` is
    ``(recording id, size, digest)`` once its writer closed the file.
    """
    now = timezone.now()
    with transaction.atomic():
        Session.objects.filter(pk=session_id, status__in=LIVE_STATUSES).update(
            status=status, status_message=message[:500], ended_at=now
        )
        Session.objects.filter(pk=session_id).update(bytes_in=bytes_in, bytes_out=bytes_out, secrets="")
        for channel in channels:
            fields = {**channel, "closed_at": now}
            still_open = SessionChannel.objects.filter(session_id=session_id, kind=channel["kind"], closed_at=None)
            if not still_open.update(**fields):
                SessionChannel.objects.create(session_id=session_id, **fields)
        SessionChannel.objects.filter(session_id=session_id, closed_at=None).update(closed_at=now)
        if recording is not None:
            recording_id, size, digest = recording
            recordings.close_recording(recording_id=recording_id, size=size, digest=digest, ended_at=now)
        Viewer.objects.filter(session_id=session_id).delete()
        session = Session.objects.select_related("owner").get(pk=session_id)
        record_event(
            action=AuditAction.SESSION_ENDED, user=session.owner, object_type="session", object_name=str(session_id),
            ip=session.client_ip, details=f"{session.status}: {session.status_message}",
        )
    return session


def attach_viewer(*, session_id, channel_name, user, access, node_id, ip, credential=""):
    """Record a websocket attached to a session (who, how, through which node and token)."""
    with transaction.atomic():
        Viewer.objects.update_or_create(
            channel_name=channel_name,
            defaults={
                "session_id": session_id, "user": user, "access": access, "node": node_id, "client_ip": ip,
                "credential": credential,
            },
        )
        if access != Access.OWNER:
            record_event(
                action=AuditAction.SESSION_JOINED, user=user, object_type="session", object_name=str(session_id),
                ip=ip, details=access,
            )


def detach_viewer(*, channel_name):
    Viewer.objects.filter(channel_name=channel_name).delete()


def viewers_of(session_id):
    """Who is attached to a session, for the terminal's list of viewers."""
    return [
        {"name": v.user.get_full_name(), "email": v.user.email, "access": v.access}
        for v in Viewer.objects.filter(session_id=session_id).select_related("user")
    ]


def terminate_session(*, actor, session, ip=None):
    """End a live session now (session-broker DELETE /api/sessions/:id, the admin, the owner's
    terminal): the row says terminated at once, and its home node hangs up after commit."""
    if not can(actor, Perm.SESSIONS_TERMINATE_OWN, session):
        raise Forbidden("Non-admins can only end their own sessions.")
    _terminate(session, actor, ip, f"Ended by {actor.email}")
    session.refresh_from_db()
    return session


def end_sessions_of(user, *, actor, ip=None):
    """End every live session ``user`` owns: their access was revoked (accounts.signals)."""
    by = actor.email if actor is not None else "an administrator"
    for session in Session.objects.filter(owner=user, status__in=LIVE_STATUSES):
        _terminate(session, actor, ip, f"Ended by {by}: the owner's access was revoked")


def drop_attachments(message, **which):
    """Close every websocket attached to a session as ``which`` (Viewer fields: a user, the
    token it came with), on every node, after commit.

    What an attachment may do (watch, type) is decided when it attaches: once the access it was
    decided on is cut or narrowed, it must attach again, and be decided again (sessions.policy).
    """
    viewers = Viewer.objects.filter(**which)
    channels = list(viewers.values_list("channel_name", flat=True))
    if channels:
        # Recorded first: should the notice be lost (Redis down), each node's sweep finds the
        # row and closes the websocket all the same (sessions.runtime.node).
        viewers.update(revoked=message[:200])
        messages.after_commit(messages.notify_revoked, channels, message)


def revoked_viewers(*, node_id, known):
    """The attachments of ``node_id`` whose access was withdrawn: ``{channel name: message}``.

    Rows of this node that name none of its ``known`` websockets (gone without a detach) go.
    """
    rows = Viewer.objects.filter(node=node_id).exclude(revoked="")
    rows.exclude(channel_name__in=known).delete()
    return dict(rows.filter(channel_name__in=known).values_list("channel_name", "revoked"))


def _terminate(session, actor, ip, message):
    with transaction.atomic():
        ended = Session.objects.filter(pk=session.pk, status__in=LIVE_STATUSES).update(
            status=Status.TERMINATED, ended_at=timezone.now(), ended_by=actor, status_message=message, secrets=""
        )
        if ended:
            record_event(
                action=AuditAction.SESSION_TERMINATED,
                user=actor,
                object_type="session",
                object_name=str(session.pk),
                ip=ip,
                details=session.target,
            )
            by = actor.email if actor is not None else "an administrator"
            # Committed is decided: should the notice be lost (Redis down), the home node's sweep
            # finds the row terminated and hangs up all the same (sessions.runtime.node).
            messages.after_commit(messages.notify_terminated, session.pk, session.node, by)


def _advance(session_id, status, **fields):
    return Session.objects.filter(pk=session_id, status__in=LIVE_STATUSES).update(status=status, **fields) == 1
