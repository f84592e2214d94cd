"""This process as a node: its live sessions, its heartbeat, and its end of the channel layer.

A session lives on the node whose websocket first opened it (its *home*); the session row names
that node, and every other node reaches it over the channel layer (sessions.runtime.messages).
When a node dies, its sessions die with it: their recordings are on disk (flushed every
second), and the periodic reaper marks them lost once the node's heartbeat stops.

One event loop (daphne's) drives every session of the node; what a session does is
sessions.live's, how it reaches its target a transport's (sessions.transports). Rows are
written by sessions.services, never here.

Outages (PostgreSQL or Redis down for a while) are waited out, never a reason to lose a session:
- The sweep (every SESSION_SWEEP seconds) ends here what the database says has ended: a
  terminate committed while the channel layer could not carry its notice is still carried out.
- An end the database could not take is kept and written again until it is (sessions.live).
- When the channel layer goes down, the sessions here forget their viewers on other nodes
  (their owners' grace period starts), and the terminals here attached to sessions elsewhere are
  told why and closed: they reconnect once it is back. Sessions whose viewers are all here go on.
- Each repeated failure is logged once, then counted (pam.outages).
"""

import asyncio
import logging
import os
import secrets
import socket

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from nodes.choices import NodeKind
from nodes.services import beat, node_alive, register_node
from pam.memory import HeapTrimmer
from pam.outages import RepeatedFailure, is_outage
from sessions import drive
from sessions.choices import Access
from sessions.live import LiveSession
from sessions.runtime import messages
from sessions.runtime.attachments import LocalAttachment, RemoteAttachment
from sessions.services import lifecycle, nodes

logger = logging.getLogger(__name__)

COUNTERS_EVERY = 5  # seconds between two saves of the sessions' byte counters
LAYER_LOST = "PAM lost contact with the node holding this session; reconnecting…"


class Closed(Exception):
    """The session cannot be attached to; the message says why."""


class NodeRuntime:
    """This process's live sessions, its heartbeat, and its end of the channel layer."""

    _instance = None

    @classmethod
    def get(cls):
        loop = asyncio.get_running_loop()
        if cls._instance is None or cls._instance.loop is not loop:
            cls._instance = cls(loop)
        return cls._instance

    def __init__(self, loop):
        self.loop = loop
        self.node_id = messages.safe_name(f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")
        self.channel = messages.node_channel(self.node_id)
        self.layer = get_channel_layer()
        self.sessions = {}
        self.remote_attachments = set()  # consumers here attached to sessions held elsewhere
        self.unfinished = set()  # ends being written until the database takes them
        self.heap = HeapTrimmer()
        self._started = None
        self.heartbeat_failure = RepeatedFailure(logger, f"node {self.node_id}: the heartbeat")
        self.sweep_failure = RepeatedFailure(logger, f"node {self.node_id}: the sweep of ended sessions")
        self.layer_failure = RepeatedFailure(logger, f"node {self.node_id}: the channel layer")
        self.database_failure = RepeatedFailure(logger, f"node {self.node_id}: the database")
        if hasattr(self.layer, "on_outage"):
            self.layer.on_outage(self._layer_outage)

    async def ensure_started(self):
        if self._started is None or (self._started.done() and self._started.exception() is not None):
            self._started = self.loop.create_task(self._start())  # again, after an outage at start
        await self._started

    async def _start(self):
        await database_sync_to_async(register_node)(self.node_id, kind=NodeKind.WEB, pid=os.getpid())
        self.loop.create_task(self._heartbeat())
        self.loop.create_task(self._sweep())
        self.loop.create_task(self._bookkeeping())
        self.loop.create_task(self._listen())

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(settings.NODE_HEARTBEAT)
            try:
                await database_sync_to_async(beat)(self.node_id, kind=NodeKind.WEB)
            except Exception as exc:  # a database blip must not stop the heartbeat for good
                self.heartbeat_failure.failed(exc)
            else:
                self.heartbeat_failure.recovered()

    async def _bookkeeping(self):
        """Flush every session's recording each second, and save the counters of those that
        changed every COUNTERS_EVERY seconds, in one database hop for all of them.

        One task for the node, not one per session: 200 busy sessions made 40 database hops a
        second (bench/README.md). The flush never waits for the database: a slow write must
        neither hold recordings in memory nor stretch what a crash could lose. At the same
        pace the heap is trimmed once it has grown (pam.memory).
        """
        ticks = 0
        saving = trimming = None
        while True:
            await asyncio.sleep(1)
            ticks += 1
            for live_session in list(self.sessions.values()):
                try:
                    live_session.flush_recording()
                except OSError:
                    logger.exception("session %s: could not flush its recording", live_session.id)
            if ticks % COUNTERS_EVERY:
                continue
            if (trimming is None or trimming.done()) and self.heap.due():  # pam.memory
                trimming = self.loop.create_task(asyncio.to_thread(self.heap.trim))
            if saving is not None and not saving.done():
                continue
            counters = [c for s in list(self.sessions.values()) if (c := s.take_counters()) is not None]
            if counters:
                saving = self.loop.create_task(self._save_counters(counters))

    async def _save_counters(self, counters):
        try:
            await database_sync_to_async(lifecycle.save_counters)(counters=counters)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.database_failure.failed(exc)

    async def _sweep(self):
        """Carry out here what the database says and a lost notice did not: end the sessions
        terminated meanwhile, close the websockets whose access was withdrawn."""
        while True:
            await asyncio.sleep(settings.SESSION_SWEEP)
            consumers = self._attached_consumers()
            if not self.sessions and not consumers:
                continue
            try:
                ended = await database_sync_to_async(lifecycle.ended_among)(list(self.sessions))
                revoked = await database_sync_to_async(lifecycle.revoked_viewers)(
                    node_id=self.node_id, known=list(consumers)
                )
            except Exception as exc:
                self.sweep_failure.failed(exc)
                continue
            self.sweep_failure.recovered()
            for session_id, (status, message) in ended.items():
                live_session = self.sessions.get(session_id)
                if live_session is not None:
                    await live_session.end(status, message)
            for channel_name, message in revoked.items():
                consumer = consumers[channel_name]
                if not consumer.revoked:
                    consumer.revoke({"type": "ended", "message": message})

    def _attached_consumers(self):
        """Every websocket of this node attached to a session, here or elsewhere, by channel name."""
        consumers = {c.channel_name: c for c in self.remote_attachments}
        for live_session in self.sessions.values():
            consumers.update((c.channel_name, c) for c in live_session.local)
        return consumers

    async def to_layer(self, fn, *args):
        """Send through the channel layer; False (and a summarised log) while it is down."""
        try:
            await fn(*args)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.layer_failure.failed(exc)
            return False
        return True

    def _layer_outage(self, down):
        """The channel layer went down: nothing crosses nodes until it is back (see the docstring)."""
        if not down:
            return
        for live_session in list(self.sessions.values()):
            live_session.forget_remote_viewers()
        for consumer in list(self.remote_attachments):
            consumer.interrupt(LAYER_LOST)

    async def _listen(self):
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception as exc:  # a channel-layer blip must not leave this node deaf for good
                self.layer_failure.failed(exc)
                await asyncio.sleep(1)
                continue
            self.layer_failure.recovered()
            if message.get("type") == "session.drive":  # file transfer: one task per request
                self.loop.create_task(drive.serve(self, message))
                continue
            live_session = self.sessions.get(message.get("session"))
            if live_session is not None:
                try:
                    await live_session.on_node_message(message)
                except Exception:
                    logger.exception("handling %s failed", message.get("type"))

    async def attach(self, consumer, session_id, access, user, ip, size=None):
        """Attach a consumer to a session: locally if it lives here, else through its home node.

        ``size`` is the owner's terminal (cols, rows), used when this attach opens the session.
        """
        await self.ensure_started()
        for _ in range(3):
            live_session = self.sessions.get(str(session_id))
            if live_session is not None:
                return await LocalAttachment.open(live_session, consumer, access, user, ip)
            row = await database_sync_to_async(lifecycle.load_session)(session_id)
            if row is None or not row.is_live:
                raise Closed(row.status_message if row else "No such session.")
            if row.node and row.node != self.node_id:
                if await database_sync_to_async(node_alive)(row.node):
                    attachment = await RemoteAttachment.open(self, row, consumer, access, user, ip)
                    self.remote_attachments.add(consumer)
                    return attachment
                raise Closed("The node holding this session is gone; the session is being closed.")
            if access != Access.OWNER:
                raise Closed("The session has not started yet: its owner has not opened it.")
            if await database_sync_to_async(lifecycle.expire_unopened)(session_id=row.pk):
                raise Closed(nodes.NEVER_OPENED)
            if await database_sync_to_async(lifecycle.claim_session)(session_id=row.pk, node_id=self.node_id):
                live_session = LiveSession(self, row, size)
                self.sessions[str(row.pk)] = live_session
                attachment = await LocalAttachment.open(live_session, consumer, access, user, ip)
                live_session.begin()
                return attachment
        raise Closed("The session could not be attached; try again.")
