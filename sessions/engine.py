"""The live half of sessions on this node: target connections and the websockets attached.

A session lives on the node whose websocket first opened it (its *home*); the session row names
that node, and every other node reaches it over the channel layer (sessions.live). When a node
dies, its sessions die with it: their recordings are on disk (flushed every second), and the
periodic reaper marks them lost once the node's heartbeat stops.

How one node holds many sessions (measured in bench/README.md):
- One event loop (daphne's) drives them all. A paramiko channel signals new data through a
  pipe, watched with the loop's epoll reader: no relay thread per session; paramiko's own
  Transport thread (one per hop) is all a session costs in threads.
- What one wakeup reads goes out as one websocket frame per attached consumer; the browser
  acknowledges what it has drawn, and reading pauses while the owner is far behind, so a fast
  `cat` cannot fill the node's memory.
- Writes go straight to the channel unless a hop is re-keying or the SSH window is full; then
  a small thread pool waits for it, so a re-key never blocks the loop.
"""

import asyncio
import logging
import os
import secrets
import socket
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from datetime import timezone as dt_timezone
from functools import partial

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from pam.exceptions import ServiceError
from recordings.models import Recording
from recordings.writer import AsciicastWriter
from sessions import drive, live
from sessions.choices import LIVE_STATUSES, Access, SessionType, Status
from sessions.models import Session, Viewer
from sessions.policy import LINK_HOLDERS, TYPING
from sessions.services import nodes
from sessions.services.sessions import route_for
from sessions.telnet import open_telnet
from targets.addresses import TargetRefused
from targets.services.hostkeys import HostKeyChanged
from targets.ssh import ConnectFailed, open_shell

logger = logging.getLogger(__name__)

READ_CHUNK = 65536
READ_BURST = 1 << 20  # most bytes taken from one session per wakeup, so others get their turn
REMOTE_BATCH = 512 * 1024  # output batched into one channel-layer message for other nodes


class Closed(Exception):
    """The session cannot be attached to; the message says why."""


def _db(fn):
    """Run a small ORM helper off the event loop."""
    return database_sync_to_async(fn)


@_db
def _load(session_id):
    return Session.objects.select_related("owner").filter(pk=session_id).first()


@_db
def _claim(session_id, node_id):
    """Make this node the session's home, unless another node is, or it expired unopened."""
    pending = Session.objects.filter(pk=session_id, status=Status.PENDING, node="")
    return pending.exclude(nodes.expired_pending()).update(node=node_id) == 1


@_db
def _expire(session_id):
    return nodes.expire_pending_sessions(session_id=session_id)


@_db
def _set_status(session_id, status, **fields):
    return Session.objects.filter(pk=session_id, status__in=LIVE_STATUSES).update(status=status, **fields) == 1


@_db
def _route(session_id):
    return route_for(Session.objects.select_related("connection").get(pk=session_id))


@_db
def _node_alive(node_id):
    return nodes.node_alive(node_id)


@_db
def _add_viewer(session_id, consumer, user, access, node, ip):
    Viewer.objects.update_or_create(
        channel_name=consumer.channel_name,
        defaults={
            "session_id": session_id, "user": user, "access": access, "node": node, "client_ip": ip,
            "credential": consumer.scope.get("credential", ""),
        },
    )
    if access != Access.OWNER:
        record_event(
            action=AuditAction.SESSION_JOINED, user=user, object_type="session", object_name=str(session_id),
            ip=ip, details=access,
        )


@_db
def _remove_viewer(channel_name):
    Viewer.objects.filter(channel_name=channel_name).delete()


@_db
def _viewer_list(session_id):
    return [
        {"name": v.user.get_full_name(), "email": v.user.email, "access": v.access}
        for v in Viewer.objects.filter(session_id=session_id).select_related("user")
    ]


class Engine:
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
        self.node_id = live.safe_name(f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")
        self.channel = live.node_channel(self.node_id)
        self.layer = get_channel_layer()
        self.sessions = {}
        self.writers = ThreadPoolExecutor(max_workers=32, thread_name_prefix="pam-ssh-write")
        self._started = None

    async def ensure_started(self):
        if self._started is None:
            self._started = self.loop.create_task(self._start())
        await self._started

    async def _start(self):
        await _db(nodes.register_node)(self.node_id, os.getpid())
        self.loop.create_task(self._heartbeat())
        self.loop.create_task(self._listen())

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(settings.NODE_HEARTBEAT)
            try:
                await _db(nodes.beat)(self.node_id)
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
                return await live_session.attach_local(consumer, access, user, ip)
            row = await _load(session_id)
            if row is None or not row.is_live:
                raise Closed(row.status_message if row else "No such session.")
            if row.node and row.node != self.node_id:
                if await _node_alive(row.node):
                    return await RemoteAttachment.open(self, row, consumer, access, user, ip)
                raise Closed("The node holding this session is gone; the session is being closed.")
            if access != Access.OWNER:
                raise Closed("The session has not started yet: its owner has not opened it.")
            if await _expire(row.pk):
                raise Closed(nodes.NEVER_OPENED)
            if await _claim(row.pk, self.node_id):
                live_session = LiveSession(self, row, size)
                self.sessions[str(row.pk)] = live_session
                attachment = await live_session.attach_local(consumer, access, user, ip)
                live_session.begin()
                return attachment
        raise Closed("The session could not be attached; try again.")


class LocalAttachment:
    """A consumer attached to a session held by this node."""

    def __init__(self, live_session, consumer, access):
        self.live_session = live_session
        self.consumer = consumer
        self.access = access

    def input(self, data):
        self.live_session.input(data, self.access)

    def control(self, message):
        self.live_session.control(message, self.access, consumer=self.consumer)

    def drawn(self, proven):
        """The consumer proved more output drawn (its count is the session's to read)."""
        self.live_session.resume_if_caught_up()

    async def detach(self):
        await self.live_session.detach_local(self.consumer)


class RemoteAttachment:
    """A consumer here attached to a session held by another node, through the channel layer."""

    def __init__(self, engine, row, consumer, access):
        self.engine = engine
        self.home = live.node_channel(row.node)
        self.session_id = str(row.pk)
        self.consumer = consumer
        self.access = access

    @classmethod
    async def open(cls, engine, row, consumer, access, user, ip):
        attachment = cls(engine, row, consumer, access)
        await engine.layer.group_add(live.group_name(attachment.session_id), consumer.channel_name)
        await _add_viewer(row.pk, consumer, user, access, engine.node_id, ip)
        await attachment._send("session.attach", channel=consumer.channel_name, access=access)
        return attachment

    async def _send(self, kind, **payload):
        await self.engine.layer.send(self.home, {"type": kind, "session": self.session_id, **payload})

    def input(self, data):
        if self.access in TYPING:
            self.engine.loop.create_task(self._send("session.input", data=data, access=self.access))

    def control(self, message):
        self.engine.loop.create_task(self._send("session.control", message=message, access=self.access))

    def drawn(self, proven):
        """Tell the home node how much of its output this owner has drawn: it paces the target by
        what it sent minus that, so output still on its way counts as well."""
        if self.access == Access.OWNER:
            self.engine.loop.create_task(self._send("session.drawn", channel=self.consumer.channel_name, proven=proven))

    async def detach(self):
        await self.engine.layer.group_discard(live.group_name(self.session_id), self.consumer.channel_name)
        await _remove_viewer(self.consumer.channel_name)
        await self._send("session.detach", channel=self.consumer.channel_name, access=self.access)


class LiveSession:
    """One session's target connection on its home node, and everyone watching it."""

    def __init__(self, engine, row, size=None):
        self.engine = engine
        self.loop = engine.loop
        self.row = row
        self.id = str(row.pk)
        self.group = live.group_name(self.id)
        self.local = {}  # consumer -> access
        self.remote = {}  # channel name -> access
        self.remote_given = {}  # an owner elsewhere: channel name -> bytes of output sent its way
        self.remote_proven = {}  # channel name -> of which its node says it has drawn
        self.link = None
        self.state = "pending"
        self.cols, self.rows = size or (80, 24)
        self.opened_size = None
        self.scrollback = deque()
        self.scrollback_size = 0
        self.recorder = None
        self.recording = None
        self.bytes_in = self.bytes_out = 0
        self.last_activity = None
        self.reading = False
        self.paused = False
        self.writes = asyncio.Queue()
        self.remote_out = asyncio.Queue()
        self.tasks = []
        self.forwarder = None  # the task sending output to other nodes
        self.grace = None
        self.dirty = False

    # --- attaching ---------------------------------------------------------------------------

    async def attach_local(self, consumer, access, user, ip):
        self.local[consumer] = access
        await _add_viewer(self.row.pk, consumer, user, access, self.engine.node_id, ip)
        if access == Access.OWNER and self.grace is not None:
            self.grace.cancel()
            self.grace = None
        if self.scrollback:
            consumer.push_output(b"".join(self.scrollback))
        consumer.push_event(self._status_event())
        if self.state == "awaiting_continue" and access == Access.OWNER:
            consumer.push_event(self._banner_event())
        self.loop.create_task(self._announce_viewers())
        self.resume_if_caught_up()  # an owner who just came has nothing to catch up on
        return LocalAttachment(self, consumer, access)

    async def detach_local(self, consumer):
        self.local.pop(consumer, None)
        await _remove_viewer(consumer.channel_name)
        self.resume_if_caught_up()
        self._owner_may_have_left()
        self.loop.create_task(self._announce_viewers())

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
        self._broadcast_event({"type": "viewers", "viewers": await _viewer_list(self.row.pk)})

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
            self.loop.create_task(self.engine.layer.group_send(self.group, {"type": "session.event", "event": event}))

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
        await _set_status(self.row.pk, Status.CONNECTING)
        self.opened_size = (self.cols, self.rows)
        try:
            route = await _route(self.row.pk)
            if self.row.session_type == SessionType.SSH:
                self.link = await self.loop.run_in_executor(
                    None,
                    partial(
                        _open_shell_in_thread, route=route, user_id=self.row.owner_id, cols=self.cols, rows=self.rows
                    ),
                )
            else:
                self.link = await open_telnet(route.target, cols=self.cols, rows=self.rows)
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
            self._close_link()
            return
        await self._started()

    async def _started(self):
        now = timezone.now()
        if self.row.recording_enabled:
            self.recorder, self.recording = await _db(_open_recording)(self.row, self.cols, self.rows, now)
        await _set_status(self.row.pk, Status.ACTIVE, started_at=now, secrets="", last_activity=now)
        await _db(record_event)(
            action=AuditAction.SESSION_STARTED, user=self.row.owner, object_type="session", object_name=self.id,
            ip=self.row.client_ip, details=f"{self.row.session_type} {self.row.target} on {self.engine.node_id}",
        )
        self._set_state("active")
        if (self.cols, self.rows) != self.opened_size:  # resized while connecting
            self.writes.put_nowait(("resize", (self.cols, self.rows)))
        self.tasks.append(self.loop.create_task(self._write_loop()))
        self.tasks.append(self.loop.create_task(self._tick()))
        self.forwarder = self.loop.create_task(self._remote_loop())
        if self.row.session_type == SessionType.SSH:
            self._start_reading()
        else:
            self.tasks.append(self.loop.create_task(self._read_telnet()))

    # --- target to consumers ---------------------------------------------------------------------

    def _start_reading(self):
        if not self.reading and self.state == "active":
            self.loop.add_reader(self.link.channel.fileno(), self._on_readable)
            self.reading = True

    def _stop_reading(self):
        if self.reading:
            self.loop.remove_reader(self.link.channel.fileno())
            self.reading = False

    def _rekeying(self):
        return any(not t.clear_to_send.is_set() for t in self.link.transports)

    def _on_readable(self):
        channel = self.link.channel
        if self._rekeying():
            # Reading may send a window adjustment, which waits for the re-key: wait here instead.
            self._stop_reading()
            self.loop.call_later(0.005, self._resume_after_rekey)
            return
        chunks, total = [], 0
        while total < READ_BURST and channel.recv_ready():
            data = channel.recv(READ_CHUNK)
            if not data:
                break
            chunks.append(data)
            total += len(data)
        if chunks:
            self._deliver(b"".join(chunks))
        if channel.exit_status_ready() or (channel.eof_received and not channel.recv_ready()) or channel.closed:
            self._stop_reading()
            self.loop.create_task(self.end(Status.ENDED, "The target closed the session."))

    def _resume_after_rekey(self):
        if self.state != "active" or self.paused:
            return
        if self._rekeying():
            self.loop.call_later(0.005, self._resume_after_rekey)
        else:
            self._start_reading()
            self._on_readable()

    async def _read_telnet(self):
        reader = self.link.reader
        if self.link.greeting:  # what the target showed while PAM signed in, without PAM's typing
            self._deliver(self.link.greeting)
        while self.state == "active":
            if self.paused:
                await asyncio.sleep(0.01)
                continue
            data = await reader.read(READ_CHUNK)
            if not data:
                await self.end(Status.ENDED, "The target closed the session.")
                return
            self._deliver(data)

    def _deliver(self, data):
        self.bytes_out += len(data)
        self.last_activity = time.time()
        self.dirty = True
        self.scrollback.append(data)
        self.scrollback_size += len(data)
        while self.scrollback_size > settings.SESSION_SCROLLBACK_BYTES and len(self.scrollback) > 1:
            self.scrollback_size -= len(self.scrollback.popleft())
        if self.recorder is not None:
            self.recorder.output(data)
        for consumer in list(self.local):
            consumer.push_output(data)
        if self.remote:
            self.remote_out.put_nowait(data)
            for channel in self.remote_given:
                self.remote_given[channel] += len(data)
        self._pause_if_behind()

    # --- flow control ----------------------------------------------------------------------------

    def _owners_behind(self):
        """How far behind each owner is: here, as counted; elsewhere, as their node last said."""
        here = [c.behind for c, a in self.local.items() if a == Access.OWNER]
        there = [max(0, given - self.remote_proven.get(ch, 0)) for ch, given in self.remote_given.items()]
        return here + there

    def _pause_if_behind(self):
        """Stop reading from the target while every owner has not drawn SESSION_HIGH_WATER bytes
        (watchers too far behind are let go by their consumer instead)."""
        behind = self._owners_behind()
        if behind and min(behind) > settings.SESSION_HIGH_WATER:
            self.paused = True
            if self.row.session_type == SessionType.SSH:
                self._stop_reading()

    def resume_if_caught_up(self):
        if not self.paused:
            return
        behind = self._owners_behind()
        if not behind or min(behind) < settings.SESSION_LOW_WATER:
            self.paused = False
            if self.row.session_type == SessionType.SSH and self.state == "active":
                self._start_reading()
                self._on_readable()

    # --- consumers to target -----------------------------------------------------------------------

    def input(self, data, access):
        """Send keystrokes to the target. They are never recorded, nor logged (recordings.writer);
        until the session is active (a telnet sign-in is part of connecting) they are dropped."""
        if access not in TYPING or self.state != "active":
            return
        self.bytes_in += len(data)
        self.last_activity = time.time()
        self.dirty = True
        self.writes.put_nowait(("data", data))

    def control(self, message, access, consumer=None):
        kind = message.get("type")
        if kind == "resize" and access in TYPING:
            size = live.terminal_size(message.get("cols"), message.get("rows"))
            if size is None:
                return
            cols, rows = self.cols, self.rows = size
            if self.state == "active":
                if self.recorder is not None:
                    self.recorder.resize(cols, rows)
                self.writes.put_nowait(("resize", (cols, rows)))
        elif kind == "continue" and access == Access.OWNER and self.state == "awaiting_continue":
            self.tasks.append(self.loop.create_task(self.connect()))
        elif kind == "terminate" and access == Access.OWNER:
            self.loop.create_task(self.end(Status.TERMINATED, "Ended by its owner."))

    async def _write_loop(self):
        while True:
            kind, payload = await self.writes.get()
            if kind == "data":
                while not self.writes.empty() and self.writes._queue[0][0] == "data":
                    payload += self.writes.get_nowait()[1]
            try:
                if self.row.session_type == SessionType.TELNET:
                    self._telnet_write(kind, payload)
                elif not self._write_now(kind, payload):
                    await self.loop.run_in_executor(self.engine.writers, self._write_blocking, kind, payload)
            except (OSError, EOFError) as exc:
                await self.end(Status.ENDED, f"The target connection broke: {exc}")
                return

    def _telnet_write(self, kind, payload):
        if kind == "data":
            self.link.writer.write(payload)
        else:
            self.link.resize(*payload)

    def _write_now(self, kind, payload):
        """Write without blocking when nothing in the chain is re-keying and the window has room."""
        channel = self.link.channel
        if self._rekeying() or (kind == "data" and channel.out_window_size < len(payload)):
            return False
        if kind == "data":
            channel.sendall(payload)
        else:
            channel.resize_pty(width=payload[0], height=payload[1])
        return True

    def _write_blocking(self, kind, payload):
        if kind == "data":
            self.link.channel.sendall(payload)
        else:
            self.link.channel.resize_pty(width=payload[0], height=payload[1])

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
            await self.engine.layer.group_send(self.group, {"type": "session.output", "data": data})

    async def on_node_message(self, message):
        kind = message["type"]
        if kind == "session.attach":
            self.remote[message["channel"]] = message["access"]
            if message["access"] == Access.OWNER:
                self.remote_given[message["channel"]] = self.scrollback_size
                if self.grace is not None:
                    self.grace.cancel()
                    self.grace = None
            if self.scrollback:
                await self.engine.layer.send(
                    message["channel"], {"type": "session.output", "data": b"".join(self.scrollback)}
                )
            await self.engine.layer.send(message["channel"], {"type": "session.event", "event": self._status_event()})
            if self.state == "awaiting_continue" and message["access"] == Access.OWNER:
                await self.engine.layer.send(
                    message["channel"], {"type": "session.event", "event": self._banner_event()}
                )
            await self._announce_viewers()
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

    async def _drop_link_holders(self):
        """The share link changed: whoever came in through the old one leaves now, here or elsewhere."""
        event = {"type": "ended", "message": "The share link of this session changed: ask its owner for the new one."}
        for consumer, access in list(self.local.items()):
            if access in LINK_HOLDERS:
                consumer.revoke(event)
        for channel, access in list(self.remote.items()):
            if access in LINK_HOLDERS:
                await self.engine.layer.send(channel, {"type": "session.revoke", "event": event})

    # --- bookkeeping and the end -------------------------------------------------------------------

    async def _tick(self):
        """Flush the recording every second, and the counters to the database every few.

        The flush never waits for the database: a slow write (a busy SQLite file, say) must
        neither hold the recording in memory nor stretch what a crash could lose.
        """
        ticks = 0
        saving = None
        while self.state == "active":
            await asyncio.sleep(1)
            ticks += 1
            if self.recorder is not None:
                self.recorder.flush()
            if self.dirty and ticks % 5 == 0 and (saving is None or saving.done()):
                self.dirty = False
                saving = self.loop.create_task(self._save_counters())

    async def _save_counters(self):
        try:
            await _db(_save_counters)(self.row.pk, self.bytes_in, self.bytes_out, self.last_activity)
        except Exception:
            logger.exception("session %s: could not save its counters", self.id)

    def _close_link(self):
        if self.link is None:
            return
        if self.row.session_type == SessionType.SSH:
            self._stop_reading()
            self.engine.writers.submit(self.link.close)
        else:
            self.link.close()

    async def end(self, status, message, by=None):
        """End the session once: hang up, close the recording, write the trail, tell everyone."""
        if self.state == "ended":
            return
        was_active = self.state == "active"
        self.state = "ended"
        if self.grace is not None:
            self.grace.cancel()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._close_link()
        if self.recorder is not None:
            self.recorder.close()
        final = await _db(_finish)(self.row.pk, status, message, self, was_active)
        event = {"type": "ended", "status": final.status, "message": final.status_message}
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
            await self.engine.layer.group_send(self.group, {"type": "session.event", "event": event, "close": True})
        self.engine.sessions.pop(self.id, None)


def _open_shell_in_thread(**kwargs):
    """open_shell from an executor thread, with this thread's database connection kept fresh."""
    close_old_connections()
    try:
        return open_shell(**kwargs)
    finally:
        close_old_connections()


def _open_recording(row, cols, rows, started_at):
    name = f"{started_at:%Y/%m/%d}/{row.pk}.cast"
    writer = AsciicastWriter(
        settings.RECORDINGS_DIR / name,
        width=cols,
        height=rows,
        title=f"{row.session_type} {row.target}",
        started_at=started_at,
    )
    recording = Recording.objects.create(name=name, session=row, started_at=started_at)
    return writer, recording


def _save_counters(session_id, bytes_in, bytes_out, last_activity):
    Session.objects.filter(pk=session_id).update(
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        last_activity=datetime.fromtimestamp(last_activity, tz=dt_timezone.utc) if last_activity else None,
    )


def _finish(session_id, status, message, live_session, was_active):
    """Write the end of the trail; a status another node already set (terminated) is kept."""
    now = timezone.now()
    channels = []
    if was_active:
        channels.append(
            {
                "id": "0",
                "type": "shell" if live_session.row.session_type == SessionType.SSH else "telnet",
                "bytes_client_to_server": live_session.bytes_in,
                "bytes_server_to_client": live_session.bytes_out,
            }
        )
    Session.objects.filter(pk=session_id, status__in=LIVE_STATUSES).update(
        status=status, status_message=message[:500], ended_at=now
    )
    Session.objects.filter(pk=session_id).update(
        bytes_in=live_session.bytes_in, bytes_out=live_session.bytes_out, channels=channels, secrets=""
    )
    if live_session.recording is not None:
        Recording.objects.filter(pk=live_session.recording.pk).update(
            size=live_session.recorder.size, ended_at=now
        )
    Viewer.objects.filter(session_id=session_id).delete()
    session = Session.objects.get(pk=session_id)
    record_event(
        action=AuditAction.SESSION_ENDED, user=session.owner, object_type="session", object_name=str(session_id),
        ip=session.client_ip, details=f"{session.status}: {session.status_message}",
    )
    return session

