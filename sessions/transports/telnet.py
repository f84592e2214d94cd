"""Reach a telnet target with telnetlib3 and sign in with the stored credentials.

Telnet has no authentication of its own: like a person at the keyboard, PAM answers the target's
login prompt with the stored username and then, only if the target next asks for a password,
types the stored password, each at most once, within SIGN_IN_WINDOW seconds of connecting.

The sign-in runs while the session is still connecting, and the live session drops what the user
types until it is active (dropped, not buffered: keys aimed at a login prompt would otherwise
run as commands in the shell that follows). So every prompt PAM answers was written by the
target, never the user's echoed typing. The user, the recording and the watchers get what
the target showed up to each prompt and what follows the line PAM typed; that line itself (the
echoed username, a password echoed by a careless target) is dropped, so what PAM types is
never shown, recorded or indexed.
"""

import asyncio
import re
import struct

import telnetlib3
from telnetlib3.telopt import IAC, NAWS, SB, SE

from sessions.transports.base import Transport
from targets.addresses import aresolve
from targets.ssh import ConnectFailed

CONNECT_TIMEOUT = 15
LOGIN_PROMPT = re.compile(rb"(login|username|user name)\s*:\s*$", re.IGNORECASE)
PASSWORD_PROMPT = re.compile(rb"password\s*:\s*$", re.IGNORECASE)
SIGN_IN_WINDOW = 10.0  # seconds the sign-in may take; the session is connecting meanwhile
TAIL = 256  # bytes of recent output searched for a prompt
READ_CHUNK = 65536


class SignIn:
    """Which credential PAM types next, and which of the target's output the user may see."""

    def __init__(self, username, password):
        self.answers = []
        if username:  # the password only ever follows a username PAM typed itself
            self.answers.append((LOGIN_PROMPT, username))
            if password:
                self.answers.append((PASSWORD_PROMPT, password))
        self.echoing = False  # PAM typed a line; the target's echo of it is dropped
        self.tail = b""

    @property
    def done(self):
        return not self.answers and not self.echoing

    def feed(self, data):
        """Take output from the target; return (what the user may see, what PAM types now)."""
        if self.echoing:
            end = data.find(b"\n")
            if end < 0:
                return b"", b""
            self.echoing = False
            data = data[end - 1 if end and data[end - 1] == 0x0D else end :]  # keep the line end
        if not self.answers:
            return data, b""
        self.tail = (self.tail + data)[-TAIL:]
        pattern, value = self.answers[0]
        if not pattern.search(self.tail.rstrip(b"\x00")):
            return data, b""
        self.answers.pop(0)
        self.tail = b""
        self.echoing = True
        return data, value.encode() + b"\r\n"


class TelnetLink:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.greeting = b""  # what the target showed during sign-in, for the user to see first

    async def sign_in(self, username, password):
        """Answer the target's login and password prompts, or give up at SIGN_IN_WINDOW."""
        dialogue = SignIn(username, password)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SIGN_IN_WINDOW
        while not dialogue.done:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                data = await asyncio.wait_for(self.reader.read(READ_CHUNK), remaining)
            except asyncio.TimeoutError:
                return
            if not data:  # the target hung up; the session's reader sees it next
                return
            shown, typed = dialogue.feed(data)
            self.greeting += shown
            if typed:
                self.writer.write(typed)

    def resize(self, cols, rows):
        cols, rows = max(0, min(65535, cols)), max(0, min(65535, rows))
        value = struct.pack("!HH", cols, rows).replace(IAC, IAC + IAC)
        self.writer.send_iac(IAC + SB + NAWS + value + IAC + SE)

    def close(self):
        self.writer.close()


async def open_telnet(hop, *, cols=80, rows=24):
    """Connect to ``hop`` (a route's target: telnet has no jump hosts) and sign in as its account;
    the user's keystrokes reach the target only after this returns."""
    host, port = hop.host, hop.port
    addresses = await aresolve(host, port)  # refuses a denied target
    last_error = None
    for address in addresses:
        try:
            reader, writer = await asyncio.wait_for(
                telnetlib3.open_connection(
                    address, port, encoding=False, term="xterm-256color", cols=cols, rows=rows, connect_maxwait=1.0
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            last_error = exc
            continue
        link = TelnetLink(reader, writer)
        try:
            await link.sign_in(hop.username, hop.password)
        except BaseException:
            link.close()
            raise
        return link
    raise ConnectFailed(f"Cannot reach {host}:{port}: {last_error}")


class TelnetTransport(Transport):
    """A telnet terminal: PAM signs in (TelnetLink.sign_in), then bytes flow both ways."""

    channel_kind = "telnet"

    def __init__(self, session, loop):
        super().__init__(session, loop)
        self.link = None
        self.paused = False
        self.closed = False
        self.reader = None

    async def open(self, route, *, cols, rows, user_id):
        self.link = await open_telnet(route.target, cols=cols, rows=rows)

    def start(self):
        self.reader = self.loop.create_task(self._read())

    async def _read(self):
        if self.link.greeting:  # what the target showed while PAM signed in, without PAM's typing
            self.session.transport_output(self.link.greeting)
        while not self.closed:
            if self.paused:
                await asyncio.sleep(0.01)
                continue
            data = await self.link.reader.read(READ_CHUNK)
            if not data:
                self.session.transport_closed("The target closed the session.")
                return
            self.session.transport_output(data)

    def pause(self):
        self.paused = True

    def resume(self):
        self.paused = False

    def write(self, data):
        self._send(self.link.writer.write, data)

    def resize(self, cols, rows):
        self._send(self.link.resize, cols, rows)

    def _send(self, fn, *args):
        try:
            fn(*args)
        except (OSError, EOFError) as exc:
            self.session.transport_closed(f"The target connection broke: {exc}")

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()
        if self.link is not None:
            self.link.close()
