"""The terminal websocket: authenticate, decide the access, then move frames to and from the engine.

Binary frames carry terminal bytes both ways. Text frames carry JSON control messages:
from the browser ``resize``, ``continue`` (past the banner), ``ack`` and ``terminate``; to the
browser ``access``, ``status``, ``banner``, ``viewers``, ``mark`` and ``ended``. A malformed
control message is ignored, never a reason to drop the socket.

Flow control: after every MARK_EVERY bytes of output the server sends ``{"type": "mark", "id":
…}``, a random id; the client answers ``{"type": "ack", "mark": id}`` once it has drawn what came
before the mark. Only a client that read the mark can name it, so an acknowledgement proves
reading (a byte count would not: a client could claim bytes it never read while the server's
write buffers grow). Reading from the target pauses while the owner has more than 4 MiB not
proven drawn and resumes under 1 MiB; whoever is more than SESSION_VIEWER_MAX_BEHIND behind
(16 MiB) is let go: a watcher is told so, an owner's page reconnects. An owner attached through
another node tells the home node what it has drawn; the home node counts what it sent it.

Who may attach, and how, is sessions.policy's answer, asked at every connect (reconnects
included). A share link is proven without the key ever being in a URL (web servers log URLs):
a browser redeemed the link's key into its login session first (sessions.views.join), an API
client sends the key in the handshake's ``X-Share-Key`` header.
"""

import asyncio
import json
import secrets
from collections import deque
from functools import partial
from urllib.parse import parse_qs
from uuid import UUID

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from accounts.authentication import websocket_token
from pam.outages import is_outage
from sessions import policy
from sessions.choices import Access
from sessions.models import Session
from sessions.runtime import messages
from sessions.runtime.node import Closed, NodeRuntime
from sessions.services.sessions import share_digest

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 4503  # a service the session needs is down: the page reconnects, backing off
UNAVAILABLE = "PAM cannot reach its database or Redis right now; reconnecting…"
# Messages handled without Channels' per-message database cleanup (see dispatch).
HOT_PATH = {
    "websocket.receive": "websocket_receive",
    "session.output": "session_output",
    "session.event": "session_event",
}
# Daphne (autobahn) refuses frames over 1 MiB: output goes out in frames of at most this size.
MAX_FRAME = 512 * 1024
# A control message (ack, resize, continue, terminate) is a few dozen characters: anything much
# longer is ignored unparsed, so no frame can make the parser work hard or recurse deeply.
MAX_CONTROL = 1024
MARK_EVERY = 64 * 1024  # bytes of output between two flow-control marks
MAX_MARKS = 1024  # marks awaiting their ack; older ones are forgotten (their acks then count for nothing)
# Work that must outlive its consumer (a detach, a terminate), held here: the loop keeps only
# weak references to tasks, and could drop one half done.
_OUTLIVING = set()


def _outliving(coroutine):
    task = asyncio.ensure_future(coroutine)
    _OUTLIVING.add(task)
    task.add_done_callback(_OUTLIVING.discard)
    return task


@database_sync_to_async
def access_for(scope, session_id):
    """How the websocket's user may take part in the session (sessions.policy), or None."""
    presented = _presented_link(scope, session_id)
    session = Session.objects.attachable_by(scope["user"], presented).filter(pk=session_id).first()
    if session is None:
        return None
    return policy.access_for(scope["user"], session, presented)


def _header(scope, name):
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return ""


def _presented_link(scope, session_id):
    """The digest of the share key this websocket presents: its header, or its login's grant."""
    key = _header(scope, b"x-share-key").strip()
    if key:
        return share_digest(key)
    login = scope.get("session")
    if websocket_token(scope) or login is None:
        return ""  # a token's bearer does not borrow a browser's grant
    return policy.granted_link(login, session_id)


def _size(query):
    try:
        return messages.terminal_size(int(query["cols"][0]), int(query["rows"][0]))
    except (KeyError, ValueError, IndexError):
        return None


class TerminalConsumer(AsyncWebsocketConsumer):
    """One browser (or API client) attached to one session."""

    attachment = None
    gone = False  # the browser disconnected: nothing more may be sent
    revoked = False  # its access was withdrawn: nothing it sends counts any more

    async def __call__(self, scope, receive, send):
        """Channels' consumer loop without its ``asyncio.wait`` and new task per message.

        That machinery was the largest single cost of an echoed key with hundreds of typing
        sessions (bench/README.md). Here one task reads the websocket and one the channel
        layer, each dispatching under a lock: messages are still handled one at a time, each
        source's in order, and taking a free lock does not wait.
        """
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            sources.append(partial(self.channel_layer.receive, self.channel_name))
        turn = asyncio.Lock()

        async def pump(source):
            while True:
                message = await source()
                async with turn:
                    await self.dispatch(message)

        pumps = [asyncio.ensure_future(pump(source)) for source in sources]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        except StopConsumer:
            pass
        finally:
            for task in pumps:
                task.cancel()
            # Ended without its disconnect (daphne kills a consumer still busy 10 s after the
            # browser left; a bug): detached all the same, or the session would keep a viewer
            # that is gone, its owner's grace period would never start and the target shell would
            # live on. A task of its own, so that this task's cancellation cannot stop it.
            if self.attachment is not None:
                self.gone = True
                _outliving(self._detach())
            await asyncio.gather(*pumps, return_exceptions=True)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        session_id = UUID(str(self.scope["url_route"]["kwargs"]["session_id"]))
        try:
            access = await access_for(self.scope, session_id)
        except Exception as exc:
            if not is_outage(exc):
                raise
            await self.accept()
            await self.send(text_data=json.dumps({"type": "interrupted", "message": UNAVAILABLE}))
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        if access is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        self._pending = []
        self._flushing = False
        self.access = access
        self.queued = 0  # bytes of output handed to this websocket
        self.sent = 0  # of which sent
        self.proven = 0  # of which the client proved drawn, by acknowledging a mark after them
        self.marks = deque(maxlen=MAX_MARKS)  # (id, bytes sent before it), oldest first
        self.last_mark = 0
        client = self.scope.get("client") or [None]
        self.push_event({"type": "access", "access": access})
        try:
            self.attachment = await self._attach(session_id, access, user, client[0], _size(query))
        except Closed as exc:
            await self.send(text_data=json.dumps({"type": "ended", "message": str(exc)}))
            await self.close()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.interrupt(UNAVAILABLE)

    async def _attach(self, *args):
        """Attach, to the end even if this consumer is killed meanwhile (daphne kills one still
        busy 10 s after its browser left): cut short, an attach could leave a session it opened
        registered and never started, or a viewer row for a page that is gone. One that
        completes after the kill is undone, as the kill's own detach would have."""
        attaching = _outliving(NodeRuntime.get().attach(self, *args))
        try:
            return await asyncio.shield(attaching)
        except asyncio.CancelledError:
            attaching.add_done_callback(self._attached_after_kill)
            raise

    def _attached_after_kill(self, attaching):
        if not attaching.cancelled() and attaching.exception() is None:
            self.gone = True
            self.attachment = attaching.result()
            _outliving(self._detach())

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
        await self._detach()

    async def _detach(self):
        if self.attachment is None:
            return
        attachment, self.attachment = self.attachment, None
        try:
            await attachment.detach()
        except Exception as exc:  # the session's own end cleans up after an outage
            if not is_outage(exc):
                raise

    async def receive(self, text_data=None, bytes_data=None):
        if self.attachment is None or self.revoked:
            return
        if bytes_data is not None:
            self.attachment.input(bytes_data)
            return
        if len(text_data) > MAX_CONTROL:
            return
        try:
            message = json.loads(text_data)
        except (ValueError, RecursionError):
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "ack":
            self._acknowledged(message.get("mark"))
        elif kind == "resize":
            size = messages.terminal_size(message.get("cols"), message.get("rows"))
            if size is not None:
                self.attachment.control({"type": "resize", "cols": size[0], "rows": size[1]})
        elif kind == "continue":
            self.attachment.control({"type": kind})
        elif kind == "terminate":
            # Shielded: once asked, the end is carried out even if this consumer is killed
            # meanwhile (the browser may close the tab right after, and daphne then gives the
            # consumer 10 s); the end itself detaches every viewer.
            try:
                await asyncio.shield(_outliving(self.attachment.terminate()))
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.push_event({"type": "interrupted", "message": f"The session was not ended: {UNAVAILABLE}"})

    # --- flow control ---------------------------------------------------------------------------

    @property
    def behind(self):
        """Bytes of output given to this websocket that its client has not proven drawn."""
        return self.queued - self.proven

    def _acknowledged(self, mark):
        """A known mark proves what was sent before it drawn; anything else proves nothing."""
        proven = next((total for name, total in self.marks if name == mark), None)
        if proven is None:
            return
        while self.marks and self.marks[0][1] <= proven:
            self.marks.popleft()
        self.proven = proven
        self.attachment.drawn(proven)

    def _keeps_up(self, count):
        """Count ``count`` more bytes of output; let the client go when it is too far behind."""
        self.queued += count
        behind = self.behind
        if behind > settings.SESSION_VIEWER_MAX_BEHIND:
            self._let_go()
            return False
        return True

    def _let_go(self):
        """Too far behind: a watcher is told and let go; an owner's page is closed without a word,
        so it reconnects and starts again from the recent output (the session goes on)."""
        if self.revoked:
            return
        if self.access == Access.OWNER:
            self.revoked = True
            self.close_soon()
        else:
            self.revoke({"type": "ended", "message": "You fell too far behind this session; reopen it."})

    # --- from a session held by this node (called by sessions.live) -------------------------

    def push_output(self, data):
        """Queue terminal bytes; what queues within one loop turn goes out as one frame."""
        if not self.revoked and self._keeps_up(len(data)):
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

    def interrupt(self, message):
        """A service this terminal needs is down: say so, and close; the page reconnects."""
        self.revoked = True
        self.push_event({"type": "interrupted", "message": message})
        self.close_soon(code=CLOSE_TRY_AGAIN)

    def revoke(self, event):
        """Withdraw this websocket's access at once: it says why, then it is closed."""
        self.revoked = True
        self.push_event(event)
        self.close_soon()

    def close_soon(self, code=None):
        asyncio.get_running_loop().create_task(self._close_after_flush(code))

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
        """Send queued output as few frames as the server's frame size limit allows, then a
        mark when MARK_EVERY bytes went out since the last one."""
        data = b"".join(run)
        for start in range(0, len(data), MAX_FRAME):
            if self.gone:
                return
            frame = data[start : start + MAX_FRAME]
            await self.base_send({"type": "websocket.send", "bytes": frame})
            self.sent += len(frame)
        if self.sent - self.last_mark >= MARK_EVERY and not self.gone:
            mark = secrets.token_hex(8)
            self.marks.append((mark, self.sent))
            self.last_mark = self.sent
            await self.send(text_data=json.dumps({"type": "mark", "id": mark}))

    async def _close_after_flush(self, code=None):
        while self._flushing:
            await asyncio.sleep(0)
        await self.close(code=code)

    # --- from a session held by another node (channel layer) -----------------------------------

    async def session_output(self, message):
        if not self.revoked and self._keeps_up(len(message["data"])):
            await self._send_output([message["data"]])

    async def session_revoke(self, message):
        self.revoke(message["event"])

    async def session_event(self, message):
        if self.gone:
            return
        await self.send(text_data=json.dumps(message["event"]))
        if message.get("close"):
            await self.close()
