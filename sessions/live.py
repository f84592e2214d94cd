"""How nodes talk about live sessions over the channel layer.

Each node listens on its own channel (``node_channel``); a session's home node (the one holding
its target connection) receives there what consumers on other nodes send: input, resizes,
attach/detach, terminate. Output and status for those remote consumers go to the session's
group. With the in-memory layer (one process) the same code runs without leaving the process.
"""

import re

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

NODE_PREFIX = "pam-node."


def node_channel(node_id):
    return NODE_PREFIX + node_id


def group_name(session_id):
    return f"pam-session.{session_id}"


def safe_name(text):
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:60]


def notify_terminated(session_id, node, by):
    """Tell the session's home node to hang up (from synchronous code, after commit)."""
    if node:
        async_to_sync(get_channel_layer().send)(
            node_channel(node), {"type": "session.terminate", "session": str(session_id), "by": by}
        )


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
