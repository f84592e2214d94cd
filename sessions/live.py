"""A live session on its home node: its transport, everyone attached, and its end.

Protocol-neutral: what reaches the target and how is the transport's (sessions.transports);
what is written to the database is sessions.services.lifecycle's. What stays here:

- Viewers, here (a consumer each) and on other nodes (a channel name each), with the access
  decided when they attached (sessions.policy says what each access may do).
- Fan-out: each piece of output goes to the recording, the replay buffer for late viewers,
  every local consumer (one websocket frame each) and, batched, to the other nodes.
- Flow control: reading from the target pauses while every owner is more than
  SESSION_HIGH_WATER bytes behind, and resumes under SESSION_LOW_WATER (local owners as their
  consumer counts, owners elsewhere as their node last said); watchers too far behind are let
  go by their consumer instead.
- A grace period: when the last owner leaves, the session waits SESSION_RECONNECT_GRACE
  seconds for one to come back, then ends.
- The end, once: hang up, close the recording, tell everyone, write the trail. When the
  database cannot take the end, everyone is told anyway and the node writes it again until it
  does (an end lost in a task nobody awaited left rows active for good).
"""

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from pam.exceptions import ServiceError
from pam.outages import is_outage
from sessions import policy
from sessions.choices import Access, Status
from sessions.runtime import messages
from sessions.services import lifecycle
from sessions.transports import transport_class
from targets.addresses import TargetRefused
from targets.services.hostkeys import HostKeyChanged
from targets.ssh import ConnectFailed

logger = logging.getLogger(__name__)

REMOTE_BATCH = 512 * 1024  # output batched into one channel-layer message for other nodes
END_RETRY_FIRST = 0.5  # seconds before writing an end the database refused again; doubled
END_RETRY_MAX = 10.0


def _db(fn):
    """Run a service off the event loop."""
    return database_sync_to_async(fn)


class LiveSession:
    """One session's target connection on its home node, and everyone watching it."""

    def __init__(self, node, row, size=None):
        self.node = node
        self.loop = node.loop
        self.row = row
        self.id = str(row.pk)
        self.group = messages.group_name(self.id)
        self.transport = transport_class(row.session_type)(self, self.loop)
        self.replay = self.transport.replay()
        self.local = {}  # consumer -> access
        self.remote = {}  # channel name -> access
        self.remote_given = {}  # an owner elsewhere: channel name -> bytes of output sent its way
        self.remote_proven = {}  # channel name -> of which its node says it has drawn
        self.state = "pending"
        self.cols, self.rows = size or (80, 24)
        self.opened_size = None
        self.recorder = None
        self.recording = None
        self.opened_at = None
        self.bytes_in = self.bytes_out = 0
        self.last_activity = None
        self.paused = False
        self.remote_out = asyncio.Queue()
        self.tasks = []
        self.forwarder = None  # the task sending output to other nodes
        self.grace = None
        self.dirty = False

    # --- attaching ---------------------------------------------------------------------------

    async def attach_local(self, consumer, access, user, ip):
        await _db(lifecycle.attach_viewer)(
            session_id=self.row.pk, channel_name=consumer.channel_name, user=user, access=access,
            node_id=self.node.node_id, ip=ip, credential=consumer.scope.get("credential", ""),
        )
        self.local[consumer] = access
        if access == Access.OWNER:
            self._cancel_grace()
        if self.replay.size:
            consumer.push_output(self.replay.snapshot())
        consumer.push_event(self._status_event())
        if self.state == "awaiting_continue" and access == Access.OWNER:
            consumer.push_event(self._banner_event())
        self.loop.create_task(self._announce_viewers())
        self.resume_if_caught_up()  # an owner who just came has nothing to catch up on

    async def detach_local(self, consumer):
        self.local.pop(consumer, None)
        self.resume_if_caught_up()
        self._owner_may_have_left()
        try:  # a Viewer row left behind is deleted with the others at the session's end
            await _db(lifecycle.detach_viewer)(channel_name=consumer.channel_name)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.node.database_failure.failed(exc)
        self.loop.create_task(self._announce_viewers())

    def forget_remote_viewers(self):
        """The channel layer is down: viewers on other nodes are out of reach (their node closes
        them; they attach again once it is back), so an owner among them has left for now."""
        self.remote.clear()
        self.remote_given.clear()
        self.remote_proven.clear()
        self.resume_if_caught_up()
        self._owner_may_have_left()

    def _cancel_grace(self):
        if self.grace is not None:
            self.grace.cancel()
            self.grace = None

    def _owner_may_have_left(self):
        owners = [a for a in (*self.local.values(), *self.remote.values()) if a == Access.OWNER]
        if not owners and self.state != "ended" and self.grace is None:
            self.grace = self.loop.call_later(
                settings.SESSION_RECONNECT_GRACE,
                lambda: self.loop.create_task(self.end(Status.ENDED, "The owner's browser did not come back.")),
            )

    async def _announce_viewers(self):
        if self.state == "ended":
            return
        try:
            viewers = await _db(lifecycle.viewers_of)(self.row.pk)
        except Exception as exc:
            if not is_outage(exc):
                raise
            return  # the list is sent again at the next attach or detach
        self._broadcast_event({"type": "viewers", "viewers": viewers})

    # --- events to consumers -------------------------------------------------------------------

    def _status_event(self):
        return {
            "type": "status",
            "state": self.state,
            "target": self.row.target,
            "session_type": self.row.session_type,
            "disable_copy": self.row.disable_copy,
            "disable_paste": self.row.disable_paste,
        }

    def _banner_event(self):
        return {"type": "banner", "text": self.row.banner, "public_key": self.row.public_key}

    def _broadcast_event(self, event):
        for consumer in list(self.local):
            consumer.push_event(event)
        if self.remote:
            self.loop.create_task(
                self.node.to_layer(self.node.layer.group_send, self.group, {"type": "session.event", "event": event})
            )

    def _set_state(self, state):
        self.state = state
        self._broadcast_event(self._status_event())

    # --- connecting ------------------------------------------------------------------------------

    def begin(self):
        """Connect now, or first show the banner (and an ephemeral key) until the owner continues."""
        if self.row.banner or self.row.public_key:
            self._set_state("awaiting_continue")
            for consumer, access in self.local.items():
                if access == Access.OWNER:
                    consumer.push_event(self._banner_event())
        else:
            self.tasks.append(self.loop.create_task(self.connect()))

    async def connect(self):
        self._set_state("connecting")
        self.opened_size = (self.cols, self.rows)
        try:
            await _db(lifecycle.mark_connecting)(session_id=self.row.pk)
            route = await _db(lifecycle.route_for)(self.row.pk)
            await self.transport.open(route, cols=self.cols, rows=self.rows, user_id=self.row.owner_id)
        except (ConnectFailed, TargetRefused, HostKeyChanged) as exc:
            await self.end(Status.FAILED, str(exc))
            return
        except ServiceError as exc:  # the connection changed since, or its stored secret no longer opens
            await self.end(Status.FAILED, exc.message)
            return
        except Exception as exc:
            logger.exception("session %s could not connect", self.id)
            await self.end(Status.FAILED, f"Could not connect: {exc}")
            return
        if self.state == "ended":  # terminated while connecting
            self.transport.close()
            return
        try:
            self.recorder, self.recording = await _db(lifecycle.mark_active)(
                session_id=self.row.pk, node_id=self.node.node_id, recording_kind=self.transport.recording_kind,
                channel_kind=self.transport.channel_kind, width=self.cols, height=self.rows,
            )
        except Exception as exc:
            if not is_outage(exc):
                raise
            await self.end(Status.FAILED, "Could not start the session: PAM's database is unavailable.")
            return
        await self._started()

    async def _started(self):
        self.opened_at = timezone.now()
        self._set_state("active")
        if (self.cols, self.rows) != self.opened_size:  # resized while connecting
            self.transport.resize(self.cols, self.rows)
        self.forwarder = self.loop.create_task(self._remote_loop())
        self.transport.start()

    # --- target to consumers ---------------------------------------------------------------------

    def transport_output(self, data):
        """Output from the target: to the recording, late viewers' replay, everyone attached."""
        self.bytes_out += len(data)
        self.last_activity = time.time()
        self.dirty = True
        self.replay.add(data)
        if self.recorder is not None:
            self.recorder.output(data)
        for consumer in list(self.local):
            consumer.push_output(data)
        if self.remote:
            self.remote_out.put_nowait(data)
            for channel in self.remote_given:
                self.remote_given[channel] += len(data)
        self._pause_if_behind()

    def transport_closed(self, message):
        """The target hung up, or the link to it broke."""
        if self.state != "ended":
            self.loop.create_task(self.end(Status.ENDED, message))

    # --- flow control ----------------------------------------------------------------------------

    def _owners_behind(self):
        """How far behind each owner is: here, as counted; elsewhere, as their node last said."""
        here = [c.behind for c, a in self.local.items() if a == Access.OWNER]
        there = [max(0, given - self.remote_proven.get(ch, 0)) for ch, given in self.remote_given.items()]
        return here + there

    def _pause_if_behind(self):
        if self.paused:
            return
        behind = self._owners_behind()
        if behind and min(behind) > settings.SESSION_HIGH_WATER:
            self.paused = True
            self.transport.pause()

    def resume_if_caught_up(self):
        if not self.paused:
            return
        behind = self._owners_behind()
        if not behind or min(behind) < settings.SESSION_LOW_WATER:
            self.paused = False
            if self.state == "active":
                self.transport.resume()

    # --- consumers to target -----------------------------------------------------------------------

    def input(self, data, access):
        """Send keystrokes to the target. They are never recorded, nor logged (recordings.writer);
        until the session is active (a telnet sign-in is part of connecting) they are dropped."""
        if not policy.can_type(access) or self.state != "active":
            return
        self.bytes_in += len(data)
        self.last_activity = time.time()
        self.dirty = True
        if self.recorder is not None and (b"\r" in data or b"\n" in data):
            self.recorder.marker()
        self.transport.write(data)

    def control(self, message, access):
        kind = message.get("type")
        if kind == "resize" and policy.can_resize(access):
            size = messages.terminal_size(message.get("cols"), message.get("rows"))
            if size is None:
                return
            self.cols, self.rows = size
            if self.state == "active":
                if self.recorder is not None:
                    self.recorder.resize(*size)
                self.transport.resize(*size)
        elif kind == "continue" and policy.can_continue(access) and self.state == "awaiting_continue":
            self.tasks.append(self.loop.create_task(self.connect()))

    # --- other nodes -------------------------------------------------------------------------------

    async def _remote_loop(self):
        """Forward output to consumers on other nodes, in order, a batch per send, until the
        session's end puts ``None`` in the queue: what came before it is sent first."""
        while True:
            data = await self.remote_out.get()
            if data is None:
                return
            while not self.remote_out.empty() and len(data) < REMOTE_BATCH and self.remote_out._queue[0]:
                data += self.remote_out.get_nowait()
            await self.node.to_layer(self.node.layer.group_send, self.group, {"type": "session.output", "data": data})

    async def on_node_message(self, message):
        kind = message["type"]
        if kind == "session.attach":
            await self._attach_remote(message["channel"], message["access"])
        elif kind == "session.detach":
            self.remote.pop(message["channel"], None)
            self.remote_given.pop(message["channel"], None)
            self.remote_proven.pop(message["channel"], None)
            self.resume_if_caught_up()
            self._owner_may_have_left()
            await self._announce_viewers()
        elif kind == "session.input":
            self.input(message["data"], message["access"])
        elif kind == "session.control":
            self.control(message["message"], message["access"])
        elif kind == "session.terminate":
            await self.end(Status.TERMINATED, f"Ended by {message.get('by', 'an admin')}.")
        elif kind == "session.unshare":
            await self._drop_link_holders()
        elif kind == "session.drawn":
            if message["channel"] in self.remote_given:
                proven = self.remote_proven.get(message["channel"], 0)
                self.remote_proven[message["channel"]] = max(proven, message["proven"])
                self.resume_if_caught_up()

    async def _attach_remote(self, channel, access):
        self.remote[channel] = access
        if access == Access.OWNER:
            self.remote_given[channel] = self.replay.size
            self._cancel_grace()
        def send(message):
            return self.node.to_layer(self.node.layer.send, channel, message)

        if self.replay.size:
            await send({"type": "session.output", "data": self.replay.snapshot()})
        await send({"type": "session.event", "event": self._status_event()})
        if self.state == "awaiting_continue" and access == Access.OWNER:
            await send({"type": "session.event", "event": self._banner_event()})
        await self._announce_viewers()

    async def _drop_link_holders(self):
        """The share link changed: whoever came in through the old one leaves now, here or elsewhere."""
        event = {"type": "ended", "message": "The share link of this session changed: ask its owner for the new one."}
        for consumer, access in list(self.local.items()):
            if policy.came_by_link(access):
                consumer.revoke(event)
        for channel, access in list(self.remote.items()):
            if policy.came_by_link(access):
                await self.node.to_layer(self.node.layer.send, channel, {"type": "session.revoke", "event": event})

    # --- bookkeeping and the end -------------------------------------------------------------------

    def take_counters(self):
        """The counters to save, if they changed since last taken (the node saves them: runtime)."""
        if not self.dirty or self.state != "active":
            return None
        self.dirty = False
        return (self.row.pk, self.bytes_in, self.bytes_out, self.last_activity)

    def flush_recording(self):
        if self.recorder is not None and self.state == "active":
            self.recorder.flush()

    def _trail(self):
        """The streams this session carried, for the trail (none if it never connected)."""
        if self.opened_at is None:
            return []
        return [{
            "kind": self.transport.channel_kind, "opened_at": self.opened_at, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
        }]

    async def end(self, status, message):
        """End the session once: hang up, close the recording, write the trail, tell everyone."""
        if self.state == "ended":
            return
        self.state = "ended"
        self._cancel_grace()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.transport.close()
        recording = None
        if self.recorder is not None:
            self.recorder.close()
            recording = (self.recording.pk, self.recorder.size, self.recorder.digest)
        trail = dict(
            session_id=self.row.pk, status=status, message=message, bytes_in=self.bytes_in,
            bytes_out=self.bytes_out, channels=self._trail(), recording=recording,
        )
        try:
            final = await _db(lifecycle.end_session)(**trail)
            event = {"type": "ended", "status": final.status, "message": final.status_message}
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.node.database_failure.failed(exc)
            event = {"type": "ended", "status": status, "message": message}
            writing = self.loop.create_task(self._write_end(trail))
            self.node.unfinished.add(writing)
            writing.add_done_callback(self.node.unfinished.discard)
        for consumer in list(self.local):
            consumer.push_event(event)
            consumer.close_soon()
        if self.forwarder is not None:
            # Watchers on other nodes get the session's last output before its end.
            self.remote_out.put_nowait(None)
            try:
                await asyncio.wait_for(self.forwarder, 10)
            except Exception:
                logger.exception("session %s: could not forward its last output", self.id)
        if self.remote:
            ended = {"type": "session.event", "event": event, "close": True}
            await self.node.to_layer(self.node.layer.group_send, self.group, ended)
        self.node.sessions.pop(self.id, None)

    async def _write_end(self, trail):
        """Write the end until the database takes it (a row another node reaped meanwhile
        keeps its status; the trail and the recording's end are written all the same)."""
        delay = END_RETRY_FIRST
        while True:
            await asyncio.sleep(delay)
            delay = min(END_RETRY_MAX, delay * 2)
            try:
                await _db(lifecycle.end_session)(**trail)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.node.database_failure.failed(exc)
                continue
            self.node.database_failure.recovered()
            return
