"""Nodes that hold live sessions: registration, heartbeat, and ending the sessions of a dead one."""

import os
import socket
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from recordings.services import close_orphaned_recordings
from sessions.choices import LIVE_STATUSES, Status
from sessions.models import Node, Session, Viewer
from sessions.runtime import messages

NEVER_OPENED = "Expired: nobody opened the session in time."


def register_node(node_id, pid):
    Node.objects.update_or_create(
        pk=node_id, defaults={"hostname": socket.gethostname(), "pid": pid, "seen_at": timezone.now()}
    )


def beat(node_id):
    """Prove this process's node alive.

    A node silent for too long (a paused VM, a starved loop) has been reaped; it registers
    again, or it would stay unknown for good: its sessions unreachable from other nodes and,
    should it die later, never ended.
    """
    if not Node.objects.filter(pk=node_id).update(seen_at=timezone.now()):
        register_node(node_id, os.getpid())


def node_alive(node_id):
    stale = timezone.now() - timedelta(seconds=settings.NODE_STALE_AFTER)
    return Node.objects.filter(pk=node_id, seen_at__gte=stale).exists()


def expired_pending():
    """A filter: the sessions nobody opened within SESSION_PENDING_TTL (no node ever claimed them)."""
    expired = timezone.now() - timedelta(seconds=settings.SESSION_PENDING_TTL)
    return (Q(node="") | Q(node__isnull=True)) & Q(status=Status.PENDING, created_at__lt=expired)


def expire_pending_sessions(session_id=None):
    """End the sessions nobody opened in time (or only ``session_id``); return how many.

    A pending session is a standing invitation to connect with stored credentials: it must not
    outlive the minutes its owner needs to open it, whatever happens to their role meanwhile.
    """
    pending = Session.objects.filter(expired_pending())
    if session_id is not None:
        pending = pending.filter(pk=session_id)
    return pending.update(
        status=Status.ENDED, ended_at=timezone.now(), secrets="", status_message=NEVER_OPENED
    )


def reap_lost_sessions(stale_after=None):
    """End the live sessions of nodes that stopped beating, and sessions never opened in time.

    Safe to run on any node, any number of times: each row changes with a conditional UPDATE.
    Returns how many sessions were ended.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.NODE_STALE_AFTER if stale_after is None else stale_after)
    dead = list(Node.objects.filter(seen_at__lt=stale).values_list("pk", flat=True))
    ended = 0
    with transaction.atomic():
        lost = Session.objects.filter(status__in=LIVE_STATUSES, node__in=dead)
        for session in lost.only("pk", "node"):
            message = f"The node {session.node} holding the session stopped."
            if not Session.objects.filter(pk=session.pk, status__in=LIVE_STATUSES).update(
                status=Status.LOST, ended_at=now, secrets="", status_message=message
            ):
                continue  # another reaper (or the node itself) ended it meanwhile
            ended += 1
            close_orphaned_recordings(session_id=session.pk, ended_at=now)
            Viewer.objects.filter(session_id=session.pk).delete()  # those of other nodes too
            # Browsers attached through surviving nodes would otherwise watch a dead session forever.
            transaction.on_commit(
                partial(messages.notify_ended, session.pk, Status.LOST.value, message), robust=True
            )
            record_event(action=AuditAction.SESSION_ENDED, object_type="session", object_name=str(session.pk),
                         details=f"lost with node {session.node}")
        ended += expire_pending_sessions()
        Viewer.objects.filter(node__in=dead).delete()
        # A node that beat again since it was found silent keeps its row (its sessions are lost).
        Node.objects.filter(pk__in=dead, seen_at__lt=stale).delete()
    return ended

