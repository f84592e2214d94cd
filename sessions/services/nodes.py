"""What the end of a node means for sessions, and the end of sessions nobody opened.

The node registry (nodes.services) finds the nodes that stopped beating and sends
``nodes_lost``; ``on_nodes_lost`` (connected in sessions.apps) ends the live sessions those
nodes held, as lost, and so does the reaper for sessions held by a node the registry does not
know at all. Sessions never opened expire here too, though no node is involved: the
same periodic task (sessions.tasks.reap_lost_sessions) does both.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from nodes.models import Node
from nodes.services import reap_dead_nodes
from recordings.services import close_orphaned_recordings
from sessions.choices import LIVE_STATUSES, Status
from sessions.models import Session, SessionChannel, Viewer
from sessions.runtime import messages

NEVER_OPENED = "Expired: nobody opened the session in time."


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


def end_lost_sessions(*, node_ids):
    """End as lost the live sessions the dead nodes ``node_ids`` held, and drop the viewers
    attached through them; return how many sessions ended.

    Each session changes with a conditional UPDATE, so running twice (two reapers, or the node
    ending it itself meanwhile) ends it once.
    """
    now = timezone.now()
    ended = 0
    with transaction.atomic():
        lost = Session.objects.filter(status__in=LIVE_STATUSES, node__in=node_ids)
        for session in lost.only("pk", "node"):
            message = f"The node {session.node} holding the session stopped."
            if not Session.objects.filter(pk=session.pk, status__in=LIVE_STATUSES).update(
                status=Status.LOST, ended_at=now, secrets="", status_message=message
            ):
                continue  # another reaper (or the node itself) ended it meanwhile
            ended += 1
            close_orphaned_recordings(session_id=session.pk, ended_at=now)
            SessionChannel.objects.filter(session_id=session.pk, closed_at=None).update(closed_at=now)
            Viewer.objects.filter(session_id=session.pk).delete()  # those of other nodes too
            # Browsers attached through surviving nodes would otherwise watch a dead session forever.
            messages.after_commit(messages.notify_ended, session.pk, Status.LOST.value, message)
            record_event(action=AuditAction.SESSION_ENDED, object_type="session", object_name=str(session.pk),
                         details=f"lost with node {session.node}")
        Viewer.objects.filter(node__in=node_ids).delete()
    return ended


def end_sessions_of_unknown_nodes():
    """End as lost the live sessions held by nodes the registry does not know at all (a node row
    deleted by hand, or reaped while it claimed a session); return how many.

    Only sessions older than NODE_STALE_AFTER: a node registers before it claims anything, so a
    younger one may belong to a node registering again after a blip.
    """
    old = timezone.now() - timedelta(seconds=settings.NODE_STALE_AFTER)
    node_ids = list(
        Session.objects.filter(status__in=LIVE_STATUSES, created_at__lt=old)
        .exclude(Q(node="") | Q(node__isnull=True))
        .exclude(node__in=Node.objects.values("pk"))
        .values_list("node", flat=True)
        .distinct()
    )
    return end_lost_sessions(node_ids=node_ids) if node_ids else 0


def on_nodes_lost(sender, node_ids, **kwargs):
    """Receive nodes.signals.nodes_lost: end the sessions of the dead nodes."""
    return end_lost_sessions(node_ids=node_ids)


def reap_lost_sessions(stale_after=None):
    """End the live sessions of nodes that stopped beating, and sessions never opened in time.

    Safe to run on any node, any number of times: each row changes with a conditional UPDATE.
    Returns how many sessions this run ended (a dead node another reaper found first counts there).
    """
    lost = reap_dead_nodes(stale_after=stale_after).get(on_nodes_lost, 0)
    return lost + end_sessions_of_unknown_nodes() + expire_pending_sessions()
