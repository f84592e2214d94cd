"""How nodes talk about live sessions over the channel layer.

Each node listens on its own channel (``node_channel``); a session's home node (the one holding
its target connection) receives there what consumers on other nodes send: input, resizes,
attach/detach, terminate. Output and status for those remote consumers go to the session's
group. With the in-memory layer (one process) the same code runs without leaving the process.
"""

import logging
import re

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.db import transaction

from pam.outages import RepeatedFailure, is_outage

logger = logging.getLogger(__name__)

NODE_PREFIX = "pam-node."
MAX_TERMINAL = 1000  # columns or rows: a larger terminal is made this large
MAX_ASKED = 100_000  # columns or rows beyond this are not a terminal size but a malformed message


def node_channel(node_id):
    return NODE_PREFIX + node_id


def group_name(session_id):
    return f"pam-session.{session_id}"


def terminal_size(cols, rows):
    """Return the ``(cols, rows)`` a terminal may have, or None when the values are not a size.

    Whole numbers from 1 to MAX_ASKED are sizes (kept within 2..MAX_TERMINAL); anything else
    (text, fractions, booleans, missing, negative, absurd) is ignored by whoever asked.
    """
    if not all(type(value) is int and 1 <= value <= MAX_ASKED for value in (cols, rows)):
        return None
    return max(2, min(cols, MAX_TERMINAL)), max(2, min(rows, MAX_TERMINAL))


def safe_name(text):
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:60]


_notice_failure = RepeatedFailure(logger, "sending a session notice through the channel layer")


def after_commit(notify, *args):
    """Send ``notify(*args)`` once the transaction commits.

    What a notice tells is committed before it is sent: should the channel layer be down, or
    the receiving channel full, the failure is logged (once, then counted) and the nodes' sweeps
    carry the change out from the database (sessions.runtime.node); it never fails the request
    that made the change.
    """

    def send():
        try:
            notify(*args)
        except Exception as exc:
            if not (is_outage(exc) or isinstance(exc, ChannelFull)):
                raise
            _notice_failure.failed(exc)
        else:
            _notice_failure.recovered()

    transaction.on_commit(send)


def notify_terminated(session_id, node, by):
    """Tell the session's home node to hang up (from synchronous code, after commit)."""
    if node:
        async_to_sync(get_channel_layer().send)(
            node_channel(node), {"type": "session.terminate", "session": str(session_id), "by": by}
        )


def notify_unshared(session_id, node):
    """Tell the session's home node that its share link changed (from synchronous code, after commit)."""
    if node:
        async_to_sync(get_channel_layer().send)(
            node_channel(node), {"type": "session.unshare", "session": str(session_id)}
        )


def notify_revoked(channels, message):
    """Close these consumers, on whichever node they are, after telling them why."""
    send = async_to_sync(get_channel_layer().send)
    for channel in channels:
        send(channel, {"type": "session.revoke", "event": {"type": "ended", "message": message}})


def notify_ended(session_id, status, message):
    """Tell the consumers attached from other nodes that the session is over, and close them.

    For a session whose home node cannot say it any more (it died): the reaper says it instead.
    """
    async_to_sync(get_channel_layer().group_send)(
        group_name(session_id),
        {
            "type": "session.event",
            "event": {"type": "ended", "status": status, "message": message},
            "close": True,
        },
    )
