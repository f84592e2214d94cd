"""SSH terminals: a shell on a PTY through the route's jump hosts (paramiko, targets.ssh).

How one node holds many of them (measured in bench/README.md):
- A paramiko channel signals new data through a pipe, watched with the loop's epoll reader: no
  relay thread per session; paramiko's own Transport thread (one per hop) is all a session
  costs in threads.
- What one wakeup reads (at most READ_BURST, so other sessions get their turn) is delivered as
  one piece, which goes out as one websocket frame per attached viewer.
- Writes go straight to the channel unless a hop is re-keying or the SSH window is full; then
  a small thread pool waits for it, so a re-key never blocks the loop. Reading during a re-key
  may send a window adjustment, which would wait for the re-key too: reading waits instead.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.db import close_old_connections

from sessions.transports.base import Transport
from targets.ssh import open_shell

READ_CHUNK = 65536
READ_BURST = 1 << 20  # most bytes taken from one session per wakeup, so others get their turn
REKEY_POLL = 0.005  # seconds between two looks at a re-keying chain
# Writes that must wait (a re-key, a full window) and hang-ups wait in these threads.
WRITERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="pam-ssh-write")


def _open_shell_in_thread(**kwargs):
    """open_shell from an executor thread, with this thread's database connection kept fresh
    (verifying host keys reads and writes pins)."""
    close_old_connections()
    try:
        return open_shell(**kwargs)
    finally:
        close_old_connections()


class SshTransport(Transport):
    channel_kind = "shell"
    jump_hosts = True
    private_keys = True
    files = True

    def __init__(self, session, loop):
        super().__init__(session, loop)
        self.link = None
        self.reading = False
        self.paused = False
        self.closed = False
        self.writes = asyncio.Queue()
        self.writer = None

    async def open(self, route, *, cols, rows, user_id):
        self.link = await self.loop.run_in_executor(
            None, partial(_open_shell_in_thread, route=route, user_id=user_id, cols=cols, rows=rows)
        )

    def start(self):
        self.writer = self.loop.create_task(self._write_loop())
        self._start_reading()

    def pause(self):
        self.paused = True
        self._stop_reading()

    def resume(self):
        self.paused = False
        if not self.closed:
            self._start_reading()
            self._on_readable()

    def write(self, data):
        self.writes.put_nowait(("data", data))

    def resize(self, cols, rows):
        self.writes.put_nowait(("resize", (cols, rows)))

    def close(self):
        if self.closed:
            return
        self.closed = True
        self._stop_reading()
        if self.writer is not None and self.writer is not asyncio.current_task():
            self.writer.cancel()
        if self.link is not None:
            WRITERS.submit(self.link.close)

    def file_backend(self):
        return self.link.transport if self.link is not None and not self.closed else None

    # --- reading ---------------------------------------------------------------------------------

    def _start_reading(self):
        if not self.reading and not self.closed:
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
            self._stop_reading()
            self.loop.call_later(REKEY_POLL, self._resume_after_rekey)
            return
        chunks, total = [], 0
        while total < READ_BURST and channel.recv_ready():
            data = channel.recv(READ_CHUNK)
            if not data:
                break
            chunks.append(data)
            total += len(data)
        if chunks:
            self.session.transport_output(b"".join(chunks))
        if channel.exit_status_ready() or (channel.eof_received and not channel.recv_ready()) or channel.closed:
            self._stop_reading()
            self.session.transport_closed("The target closed the session.")

    def _resume_after_rekey(self):
        if self.closed or self.paused:
            return
        if self._rekeying():
            self.loop.call_later(REKEY_POLL, self._resume_after_rekey)
        else:
            self._start_reading()
            self._on_readable()

    # --- writing ---------------------------------------------------------------------------------

    async def _write_loop(self):
        while True:
            kind, payload = await self.writes.get()
            if kind == "data":
                while not self.writes.empty() and self.writes._queue[0][0] == "data":
                    payload += self.writes.get_nowait()[1]
            try:
                if not self._write_now(kind, payload):
                    await self.loop.run_in_executor(WRITERS, self._write_blocking, kind, payload)
            except (OSError, EOFError) as exc:
                self.session.transport_closed(f"The target connection broke: {exc}")
                return

    def _write_now(self, kind, payload):
        """Write without blocking when nothing in the chain is re-keying and the window has room."""
        channel = self.link.channel
        if self._rekeying() or (kind == "data" and channel.out_window_size < len(payload)):
            return False
        self._write_blocking(kind, payload)
        return True

    def _write_blocking(self, kind, payload):
        if kind == "data":
            self.link.channel.sendall(payload)
        else:
            self.link.channel.resize_pty(width=payload[0], height=payload[1])
