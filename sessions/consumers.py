"""The terminal websocket: authenticate, decide the access, then move frames to and from the engine.

Binary frames carry terminal bytes both ways. Text frames carry JSON control messages:
from the browser ``resize``, ``continue`` (past the banner), ``ack`` (bytes drawn, for flow
control: reading from the target pauses while the owner has 4 MiB unacknowledged and resumes
under 1 MiB, so a client acknowledges at least every 64 KiB it has drawn) and ``terminate``;
to the browser ``status``, ``banner``, ``viewers`` and ``ended``.
"""

import asyncio
import json
from urllib.parse import parse_qs
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.permissions import can
from accounts.roles import Perm
from sessions.choices import Access, ShareMode
from sessions.engine import Closed, Engine
from sessions.models import Session
from sessions.services.sessions import share_key_matches

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# Messages handled without Channels' per-message database cleanup (see dispatch).
HOT_PATH = {
    "websocket.receive": "websocket_receive",
    "session.output": "session_output",
    "session.event": "session_event",
}
# Daphne (autobahn) refuses frames over 1 MiB: output goes out in frames of at most this size.
MAX_FRAME = 512 * 1024


@database_sync_to_async
def access_for(user, session_id, key):
    """How ``user`` may take part in the session: owner, share-link holder, supervisor, or not."""
    session = Session.objects.filter(pk=session_id).first()
    if session is None:
        return None
    if session.owner_id == user.pk:
        return Access.OWNER
    if key and share_key_matches(session, key):
        return Access.COLLABORATOR if session.share_mode == ShareMode.READ_WRITE else Access.VIEWER
    if can(user, Perm.SESSIONS_WATCH_ANY):
        return Access.SUPERVISOR
    return None


def _size(query):
    try:
        cols, rows = int(query["cols"][0]), int(query["rows"][0])
    except (KeyError, ValueError, IndexError):
        return None
    return max(2, min(cols, 1000)), max(2, min(rows, 1000))


class TerminalConsumer(AsyncWebsocketConsumer):
    """One browser (or API client) attached to one session."""

    attachment = None
    gone = False  # the browser disconnected: nothing more may be sent

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        session_id = UUID(str(self.scope["url_route"]["kwargs"]["session_id"]))
        access = await access_for(user, session_id, (query.get("key") or [""])[0])
        if access is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        self._pending = []
        self._flushing = False
        client = self.scope.get("client") or [None]
        self.push_event({"type": "access", "access": access})
        try:
            self.attachment = await Engine.get().attach(self, session_id, access, user, client[0], _size(query))
        except Closed as exc:
            await self.send(text_data=json.dumps({"type": "ended", "message": str(exc)}))
            await self.close()

    async def dispatch(self, message):
        """Terminal traffic skips Channels' per-message ``close_old_connections``.

        Channels runs it before every handler, as a hop through the one thread all synchronous
        database work shares: with hundreds of typing sessions every keystroke queued behind
        that thread. Frames and output touch no database; what does (connect, disconnect, the
        engine's queries) goes through ``database_sync_to_async``, which closes stale
        connections itself.
        """
        handler = HOT_PATH.get(message["type"])
        if handler is None:
            await super().dispatch(message)
        else:
            await getattr(self, handler)(message)

    async def disconnect(self, code):
        self.gone = True
        if self.attachment is not None:
            attachment, self.attachment = self.attachment, None
            await attachment.detach()

    async def receive(self, text_data=None, bytes_data=None):
        if self.attachment is None:
            return
        if bytes_data is not None:
            self.attachment.input(bytes_data)
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if message.get("type") == "ack":
            count = message.get("bytes")
            if isinstance(count, int) and count > 0:
                self.attachment.ack(count)
        else:
            self.attachment.control(message)

    # --- from a session held by this node (called by sessions.engine) -----------------------

    def push_output(self, data):
        """Queue terminal bytes; what queues within one loop turn goes out as one frame."""
        self._queue(data)

    def push_event(self, event):
        self._queue(event)

    def _queue(self, item):
        if self.gone:
            return
        self._pending.append(item)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())

    def close_soon(self):
        asyncio.get_running_loop().create_task(self._close_after_flush())

    async def _flush(self):
        try:
            while self._pending and not self.gone:
                batch, self._pending = self._pending, []
                run = []
                for item in batch:
                    if isinstance(item, (bytes, bytearray)):
                        run.append(item)
                        continue
                    await self._send_output(run)
                    run = []
                    await self.send(text_data=json.dumps(item))
                await self._send_output(run)
        finally:
            self._flushing = False

    async def _send_output(self, run):
        """Send queued output as few frames as the server's frame size limit allows."""
        data = b"".join(run)
        for start in range(0, len(data), MAX_FRAME):
            if self.gone:
                return
            await self.send(bytes_data=data[start : start + MAX_FRAME])

    async def _close_after_flush(self):
        while self._flushing:
            await asyncio.sleep(0)
        await self.close()

    # --- from a session held by another node (channel layer) -----------------------------------

    async def session_output(self, message):
        await self._send_output([message["data"]])

    async def session_event(self, message):
        if self.gone:
            return
        await self.send(text_data=json.dumps(message["event"]))
        if message.get("close"):
            await self.close()
