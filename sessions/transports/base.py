"""The one interface between a live session (sessions.live) and the protocol that reaches its target.

A live session knows nothing of SSH or telnet: it owns the viewers, their access, fan-out, flow
control, the recording and the end. A transport owns one target connection and moves bytes:

- ``open(route, cols=, rows=, user_id=)`` reaches and signs in to the target (a coroutine;
  blocking client libraries run in a thread); ``route`` is a targets.routes.Route, the one value
  that carries the target, its jump hosts and their secrets. Nothing typed reaches the target
  before it returns.
- ``start()`` begins delivering output: ``session.transport_output(data)`` on the event loop,
  in order, for each piece; ``session.transport_closed(message)`` once when the target hangs up
  or the link breaks.
- ``pause()`` / ``resume()``: stop and restart reading from the target (flow control: while
  paused, the target's own window fills and it stops sending).
- ``write(data)`` and ``resize(cols, rows)`` never block the loop; ``close()`` hangs up (safe twice).

What the session asks of a transport, as class attributes and methods:

- ``channel_kind``: the trail's name for its stream (SessionChannel.kind).
- ``recording_kind``: how recordings.services records its output ("asciicast"), or None.
- ``replay()``: a fresh buffer of what a viewer joining late is sent first (``add``,
  ``snapshot``, ``size``). Terminals keep their recent output (Scrollback).
- ``file_backend()``: the file service of an open link (for SSH, an object whose ``open_sftp()``
  gives a paramiko SFTP client over the session's own login), or None.
- ``jump_hosts``, ``private_keys``, ``files``: whether a route may have hops, sign in with a
  key, and offer files; the services read these from the registry (sessions.transports)
  instead of naming protocols.

Two coming kinds fit the same shape. A framebuffer relay (VNC) delivers RFB messages as output,
its ``replay()`` keeps what a late viewer needs to draw the screen (the server's init and the
last full update), ``resize`` asks for a new desktop size, and ``recording_kind`` names a
framebuffer recorder. A file-manager session has no stream: ``start()`` delivers nothing,
``recording_kind`` is None, and ``file_backend()`` is the whole session, driven by the drive
(sessions.drive) while the live session still holds viewers, grace period and end.
"""

from abc import ABC, abstractmethod
from collections import deque

from django.conf import settings


class Scrollback:
    """The recent output of a terminal, bounded by SESSION_SCROLLBACK_BYTES, for late viewers."""

    def __init__(self):
        self.chunks = deque()
        self.size = 0

    def add(self, data):
        self.chunks.append(data)
        self.size += len(data)
        while self.size > settings.SESSION_SCROLLBACK_BYTES and len(self.chunks) > 1:
            self.size -= len(self.chunks.popleft())

    def snapshot(self):
        return b"".join(self.chunks)


class Transport(ABC):
    """One session's connection to its target (see the module docstring for the contract)."""

    channel_kind = ""
    recording_kind = "asciicast"
    jump_hosts = False
    private_keys = False
    files = False

    def __init__(self, session, loop):
        self.session = session
        self.loop = loop

    @staticmethod
    def replay():
        return Scrollback()

    @abstractmethod
    async def open(self, route, *, cols, rows, user_id):
        ...

    @abstractmethod
    def start(self):
        ...

    @abstractmethod
    def pause(self):
        ...

    @abstractmethod
    def resume(self):
        ...

    @abstractmethod
    def write(self, data):
        ...

    @abstractmethod
    def resize(self, cols, rows):
        ...

    @abstractmethod
    def close(self):
        ...

    def file_backend(self):
        return None
