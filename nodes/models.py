from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from nodes.choices import NodeKind


class NodeQuerySet(models.QuerySet):
    def _stale(self, stale_after):
        seconds = settings.NODE_STALE_AFTER if stale_after is None else stale_after
        return timezone.now() - timedelta(seconds=seconds)

    def alive(self, stale_after=None):
        """Nodes that beat within ``stale_after`` seconds (default NODE_STALE_AFTER)."""
        return self.filter(seen_at__gte=self._stale(stale_after))

    def dead(self, stale_after=None):
        """Nodes silent for longer than that: presumed gone with everything they held."""
        return self.filter(seen_at__lt=self._stale(stale_after))


class Node(models.Model):
    """A process holding live work (sessions, tunnels, SSH connections); it proves it is alive by
    heartbeat.

    Whatever a node held when it stopped beating is ended by the apps that own it, when the reaper
    sends ``nodes_lost`` (nodes.services.reap_dead_nodes), so no session or tunnel outlives the
    process that held it. The table is the one sessions created (the model moved here).
    """

    id = models.CharField(primary_key=True, max_length=100)
    kind = models.CharField(max_length=10, choices=NodeKind.choices)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = NodeQuerySet.as_manager()

    class Meta:
        db_table = "pam_sessions_node"
        ordering = ["-seen_at"]

    def __str__(self):
        return self.id
