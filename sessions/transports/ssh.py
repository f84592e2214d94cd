"""SSH terminals: a shell on a PTY through the route's jump hosts, by the OpenSSH client (targets.openssh).

The node relays bytes between the session and its ``ssh`` process (typed input into a local PTY,
output from a pipe); the SSH work itself (ciphers, windows, re-keys, keep-alives, jump hosts)
runs in that process, beside the node (measured in bench/README.md):
- The output pipe is watched with the loop's epoll reader. What one wakeup reads (at most
  READ_BURST, so other sessions get their turn) is delivered as one piece, which goes out as one
  websocket frame per attached viewer.
- Pausing stops reading: the pipe fills, ``ssh`` stops reading its channel, and the target's SSH
  window closes. Writes go straight to the PTY; what it cannot take now waits for it to drain.
- Resizing sets the PTY's size and tells ``ssh`` (SIGWINCH), which sends it on.
"""

import os
from concurrent.futures import ThreadPoolExecutor

from sessions.transports.base import Transport
from targets.openssh import STDERR_KEPT, open_shell

READ_CHUNK = 65536
READ_BURST = 1 << 20  # most bytes taken from one session per wakeup, so others get their turn
# Clients being ended and reaped, and SFTP work, wait in these threads, never on the loop.
WRITERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="pam-ssh")


class SshTransport(Transport):
    channel_kind = "shell"
    jump_hosts = True
    private_keys = True
    files = True

    def __init__(self, session, loop):
        super().__init__(session, loop)
        self.shell = None
        self.reading = False
        self.closed = False
        self.pending = bytearray()  # typed input the PTY could not take yet
        self.complaints = bytearray()  # the tail of what ssh said on stderr since sign-in

    async def open(self, route, *, cols, rows, user_id):
        self.shell = await open_shell(route, user_id=user_id, cols=cols, rows=rows)
        self.loop.add_reader(self.shell.errors, self._on_complaint)

    def start(self):
        self._start_reading()

    def pause(self):
        self._stop_reading()

    def resume(self):
        if not self.closed:
            self._start_reading()
            self._on_readable()

    def write(self, data):
        if self.closed:
            return
        if self.pending:
            self.pending += data
            return
        try:
            written = os.write(self.shell.fd, data)
        except BlockingIOError:
            written = 0
        except OSError:
            return  # the client is gone: the reader reports the end
        if written < len(data):
            self.pending += data[written:]
            self.loop.add_writer(self.shell.fd, self._on_writable)

    def resize(self, cols, rows):
        if not self.closed:
            self.shell.resize(cols, rows)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self._stop_reading()
        if self.shell is not None:
            self.loop.remove_writer(self.shell.fd)
            self.loop.remove_reader(self.shell.errors)
            WRITERS.submit(self._finish, self.shell)

    def file_backend(self):
        return self.shell if self.shell is not None and not self.closed else None

    @staticmethod
    def _finish(shell):
        shell.finish()
        shell.close_descriptors()

    # --- reading ---------------------------------------------------------------------------------

    def _start_reading(self):
        if not self.reading and not self.closed:
            self.loop.add_reader(self.shell.output, self._on_readable)
            self.reading = True

    def _stop_reading(self):
        if self.reading:
            self.loop.remove_reader(self.shell.output)
            self.reading = False

    def _on_readable(self):
        chunks, total, ended = [], 0, False
        while total < READ_BURST:
            try:
                data = os.read(self.shell.output, READ_CHUNK)
            except BlockingIOError:
                break
            if not data:
                ended = True
                break
            chunks.append(data)
            total += len(data)
        if chunks:
            self.session.transport_output(b"".join(chunks))
        if ended:
            self._stop_reading()
            self.session.transport_closed(self._end_message())

    def _on_complaint(self):
        try:
            data = os.read(self.shell.errors, 4096)
        except BlockingIOError:
            return
        if not data:
            self.loop.remove_reader(self.shell.errors)
            return
        self.complaints = (self.complaints + data)[-STDERR_KEPT:]

    def _end_message(self):
        lines = [line.strip() for line in self.complaints.decode(errors="replace").splitlines() if line.strip()]
        if lines and "closed" not in lines[-1]:
            return f"The target connection broke: {lines[-1][:200]}"
        return "The target closed the session."

    # --- writing ---------------------------------------------------------------------------------

    def _on_writable(self):
        try:
            written = os.write(self.shell.fd, self.pending)
        except BlockingIOError:
            return
        except OSError:
            written = len(self.pending)
        del self.pending[:written]
        if not self.pending:
            self.loop.remove_writer(self.shell.fd)
