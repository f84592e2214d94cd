"""The one registry of nodes: registration, heartbeat, and the end of a node that went silent.

Every process that holds live work registers as a node of its kind (nodes.choices.NodeKind): a
web node its live sessions (sessions.runtime.node), a worker its tunnels (connections.tunnels),
an SSH listener its connections. It beats every NODE_HEARTBEAT seconds; one silent for
NODE_STALE_AFTER is dead. The reaper does not know what a node held: it sends ``nodes_lost``
and each app ends its own work (sessions.apps, connections.apps), then the rows go.
"""

import os
import socket

from django.db import transaction
from django.utils import timezone

from nodes.models import Node
from nodes.signals import nodes_lost


def register_node(node_id, *, kind, pid):
    """Record this process as the node ``node_id`` of ``kind``, alive now."""
    Node.objects.update_or_create(
        pk=node_id, defaults={"kind": kind, "hostname": socket.gethostname(), "pid": pid, "seen_at": timezone.now()}
    )


def beat(node_id, *, kind):
    """Prove this process's node alive.

    A node silent for too long (a paused VM, a starved loop) has been reaped; it registers
    again, or it would stay unknown for good: its work unreachable from other nodes and,
    should it die later, never ended.
    """
    if not Node.objects.filter(pk=node_id).update(seen_at=timezone.now()):
        register_node(node_id, kind=kind, pid=os.getpid())


def deregister_node(node_id):
    """Forget the node ``node_id``: its process stops cleanly, having let go of what it held."""
    Node.objects.filter(pk=node_id).delete()


def node_alive(node_id):
    """Whether the node ``node_id`` is registered and beat within NODE_STALE_AFTER."""
    return Node.objects.alive().filter(pk=node_id).exists()


def reap_dead_nodes(stale_after=None):
    """Have each app end what the nodes silent for ``stale_after`` seconds (default
    NODE_STALE_AFTER) held, then forget those nodes.

    ``nodes_lost`` is sent inside the transaction that deletes the rows: the apps' changes and
    the deletion commit together, or not at all and the next run tries again. Safe on any node,
    any number of times, at once: each dead row is locked by the one reaper that found it
    (SKIP LOCKED on PostgreSQL; SQLite runs one writer at a time), so the signal goes out once
    per dead node, and a node beating meanwhile waits, then registers again.

    Returns what each receiver answered, by receiver; empty when no node was dead.
    """
    with transaction.atomic():
        dead = Node.objects.dead(stale_after).select_for_update(skip_locked=True)
        node_ids = list(dead.values_list("pk", flat=True))
        if not node_ids:
            return {}
        answers = dict(nodes_lost.send(sender=Node, node_ids=node_ids))
        Node.objects.filter(pk__in=node_ids).delete()
    return answers
