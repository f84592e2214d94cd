"""Connection tunnels at run time: the worker side that holds the local ports open.

Why it is built this way:

- A Celery task must not occupy a worker slot for as long as a tunnel lives. The task
  ``start_tunnels`` only hands the tunnels to this process's TunnelManager, a daemon thread
  started by the first task that needs it, and returns at once.
- The database is the control plane. A start (from any web node) marks the connection's rows
  ``starting`` and queues ``start_tunnels``; the worker that runs it claims them with a
  conditional UPDATE (``node`` = this process) and opens them. A stop marks the rows
  ``stopping``; the manager holding them sees that on its next look at the database (every
  second, or at once when a task wakes it) and closes them. So a stop works from any process
  and with any Celery pool (prefork children, solo, threads) without knowing which process
  holds the tunnel.
- The manager writes state and counters to its rows, and proves its process alive as a node of
  kind ``worker`` in the one node registry (nodes.services: registered on start, a heartbeat
  every NODE_HEARTBEAT, deregistered on a clean shutdown). A tunnel whose node is dead (killed,
  machine lost) or gone is handed to another worker by the reaper (nodes_lost, and
  connections.services.tunnels.reap_lost_tunnels); a worker shutting down hands its tunnels
  back itself.
- Tunnels are independent of each other: each is a RunningTunnel (connections.forwarding)
  with its own listener, SSH link and reconnect loop.
"""

import logging
import os
import secrets
import socket
import threading
import time

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from connections.choices import RUNNING_TUNNEL_STATES, TunnelState
from connections.forwarding import POLL, RunningTunnel, close_db
from connections.models import Tunnel
from nodes.choices import NodeKind
from nodes.services import beat, deregister_node, register_node

logger = logging.getLogger(__name__)

JOIN_TIMEOUT = 2.0


class TunnelManager:
    """The tunnels held by this process: claims them, closes them when asked, reports them.

    It is a node of kind worker in the node registry, registered before it claims anything, so a
    tunnel's ``node`` names a registered node until that node is reaped or deregistered.
    """

    def __init__(self):
        self.pid = os.getpid()
        self.node_id = f"{socket.gethostname()[:60]}-{self.pid}-{secrets.token_hex(3)}"
        register_node(self.node_id, kind=NodeKind.WORKER, pid=self.pid)
        self._tunnels = {}  # row id -> RunningTunnel
        self._reported = {}  # row id -> counters last written
        self._beat_at = time.monotonic()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pam-tunnels", daemon=True)
        self._thread.start()

    @property
    def alive(self):
        return self._thread.is_alive() and not self._done.is_set()

    def wake(self):
        self._wake.set()

    def held(self):
        with self._lock:
            return dict(self._tunnels)

    def claim(self, connection_id):
        """Take the connection's tunnels waiting for a worker and open them; return how many opened.

        Each row is claimed with a conditional UPDATE, so two workers given the same task never
        both open a tunnel.
        """
        beat(self.node_id, kind=NodeKind.WORKER)  # registered again first, should it have been reaped
        now = timezone.now()
        waiting = Tunnel.objects.filter(connection_id=connection_id, state=TunnelState.STARTING, node="")
        opened = 0
        for pk in list(waiting.values_list("pk", flat=True)):
            if not Tunnel.objects.filter(pk=pk, state=TunnelState.STARTING, node="").update(
                node=self.node_id, updated_at=now
            ):
                continue  # another worker took it first
            row = Tunnel.objects.get(pk=pk)
            tunnel = RunningTunnel(self, row)
            with self._lock:
                self._tunnels[pk] = tunnel
            opened += tunnel.start()
        self.wake()
        return opened

    def shutdown(self, release=True):
        """Close every tunnel; with ``release``, leave them for the next worker to reopen and leave
        the node registry (without, the rows stay as they are, as a killed worker leaves them)."""
        self._done.set()
        self._wake.set()
        with self._lock:
            tunnels, self._tunnels = self._tunnels, {}
        for tunnel in tunnels.values():
            tunnel.close()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for tunnel in tunnels.values():
            tunnel.join(deadline)
        if release and tunnels:
            now = timezone.now()
            try:
                mine = Tunnel.objects.filter(pk__in=list(tunnels), node=self.node_id)
                mine.filter(state=TunnelState.STOPPING).update(
                    state=TunnelState.STOPPED, stopped_at=now, updated_at=now, connections_open=0
                )
                mine.filter(state__in=RUNNING_TUNNEL_STATES).update(
                    state=TunnelState.STARTING,
                    node="",
                    message="Its worker stopped; the tunnel reopens on the next worker.",
                    connections_open=0,
                    updated_at=now,
                )
            except DatabaseError:
                logger.warning("Could not hand back %d tunnel(s) at shutdown", len(tunnels))
        if self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT)
        if release:
            # After the loop's last heartbeat, which would register the node again. Rows a failed
            # hand-back left naming this node are reaped as those of a node gone.
            try:
                deregister_node(self.node_id)
            except DatabaseError:
                logger.warning("Could not deregister node %s at shutdown; it is reaped once stale", self.node_id)

    # --- the loop -----------------------------------------------------------------------------

    def _run(self):
        try:
            while not self._done.is_set():
                self._wake.wait(POLL)
                self._wake.clear()
                if self._done.is_set():
                    return
                try:
                    self._beat()
                    self._look()
                except DatabaseError:
                    logger.warning("Tunnel manager: the database could not be reached; trying again")
                    close_db()
                except Exception:
                    logger.exception("Tunnel manager: unexpected error")
        finally:
            close_db()

    def _beat(self):
        """Prove this worker alive every NODE_HEARTBEAT seconds, whether it holds tunnels or not."""
        if time.monotonic() - self._beat_at >= settings.NODE_HEARTBEAT:
            beat(self.node_id, kind=NodeKind.WORKER)
            self._beat_at = time.monotonic()

    def _look(self):
        """Close what was asked to stop (or vanished), and report the counters that changed."""
        running = self.held()
        if not running:
            return
        rows = dict(
            (pk, (state, node))
            for pk, state, node in Tunnel.objects.filter(pk__in=list(running)).values_list("pk", "state", "node")
        )
        now = timezone.now()
        for pk, tunnel in running.items():
            state, node = rows.get(pk, (None, None))
            mine = node == self.node_id
            if not mine or state == TunnelState.STOPPING or tunnel.finished.is_set():
                tunnel.close()
                with self._lock:
                    self._tunnels.pop(pk, None)
                self._flush(pk, tunnel, force=True)
                if mine and state == TunnelState.STOPPING:
                    Tunnel.objects.filter(pk=pk, node=self.node_id, state=TunnelState.STOPPING).update(
                        state=TunnelState.STOPPED, stopped_at=now, updated_at=now, connections_open=0, message=""
                    )
                self._reported.pop(pk, None)
            else:
                self._flush(pk, tunnel, force=False)

    def _flush(self, pk, tunnel, force):
        counters = tunnel.counters()
        if not force and self._reported.get(pk) == counters:
            return
        bytes_in, bytes_out, total, open_now = counters
        Tunnel.objects.filter(pk=pk, node=self.node_id).update(
            bytes_in=bytes_in, bytes_out=bytes_out, connections_total=total, connections_open=open_now
        )
        self._reported[pk] = counters


_manager = None
_manager_lock = threading.Lock()


def manager():
    """This process's TunnelManager, started on first use (a forked child starts its own)."""
    global _manager
    with _manager_lock:
        if _manager is None or _manager.pid != os.getpid() or not _manager.alive:
            _manager = TunnelManager()
        return _manager


def running_manager():
    """This process's TunnelManager if one runs, else None."""
    current = _manager
    return current if current is not None and current.pid == os.getpid() and current.alive else None


def shutdown(release=True):
    """Close this process's tunnels (worker shutdown, tests); a no-op where none run."""
    global _manager
    with _manager_lock:
        current, _manager = _manager, None
    if current is not None and current.pid == os.getpid():
        current.shutdown(release=release)
