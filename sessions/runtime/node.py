"""This process as a node: its live sessions, its heartbeat, and its end of the channel layer.

A session lives on the node whose websocket first opened it (its *home*); the session row names
that node, and every other node reaches it over the channel layer (sessions.runtime.messages).
When a node dies, its sessions die with it: their recordings are on disk (flushed every
second), and the periodic reaper marks them lost once the node's heartbeat stops.

One event loop (daphne's) drives every session of the node; what a session does is
sessions.live's, how it reaches its target a transport's (sessions.transports). Rows are
written by sessions.services, never here.
"""

import asyncio
import logging
import os
import secrets
import socket

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from sessions import drive
from sessions.choices import Access
from sessions.live import LiveSession
from sessions.runtime import messages
from sessions.runtime.attachments import LocalAttachment, RemoteAttachment
from sessions.services import lifecycle, nodes

logger = logging.getLogger(__name__)


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
        self._started = None

    async def ensure_started(self):
        if self._started is None:
            self._started = self.loop.create_task(self._start())
        await self._started

    async def _start(self):
        await database_sync_to_async(nodes.register_node)(self.node_id, os.getpid())
        self.loop.create_task(self._heartbeat())
        self.loop.create_task(self._listen())

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(settings.NODE_HEARTBEAT)
            try:
                await database_sync_to_async(nodes.beat)(self.node_id)
            except Exception:  # a database blip must not stop the heartbeat for good
                logger.exception("node heartbeat failed")

    async def _listen(self):
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:  # a channel-layer blip must not leave this node deaf for good
                logger.exception("node %s: receiving from the channel layer failed", self.node_id)
                await asyncio.sleep(1)
                continue
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
                if await database_sync_to_async(nodes.node_alive)(row.node):
                    return await RemoteAttachment.open(self, row, consumer, access, user, ip)
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
