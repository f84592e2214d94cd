"""Reach a telnet target with telnetlib3 and sign in with the stored credentials.

Telnet has no authentication of its own: like a person at the keyboard, PAM answers the
target's login and password prompts (the first ones only, within a few seconds). What PAM
types for the user is never recorded as input.
"""

import asyncio
import re
import struct

import telnetlib3
from telnetlib3.telopt import IAC, NAWS, SB, SE

from connections.targets import aresolve
from sessions.ssh import ConnectFailed

CONNECT_TIMEOUT = 15
LOGIN_PROMPT = re.compile(rb"(login|username|user name)\s*:\s*$", re.IGNORECASE)
PASSWORD_PROMPT = re.compile(rb"password\s*:\s*$", re.IGNORECASE)
SIGN_IN_WINDOW = 10.0  # seconds after connecting in which prompts are answered
TAIL = 256  # bytes of recent output searched for a prompt


class TelnetLink:
    def __init__(self, reader, writer, username, password):
        self.reader = reader
        self.writer = writer
        self._answers = []
        if username:
            self._answers.append((LOGIN_PROMPT, username))
        if password:
            self._answers.append((PASSWORD_PROMPT, password))
        self._tail = b""
        self._deadline = asyncio.get_running_loop().time() + SIGN_IN_WINDOW

    def answer_prompts(self, data):
        """Type the next stored credential when its prompt appears in ``data``."""
        if not self._answers:
            return
        if asyncio.get_running_loop().time() > self._deadline:
            self._answers = []
            return
        self._tail = (self._tail + data)[-TAIL:]
        pattern, value = self._answers[0]
        if pattern.search(self._tail.rstrip(b"\x00")):
            self._answers.pop(0)
            self._tail = b""
            self.writer.write(value.encode() + b"\r\n")

    def resize(self, cols, rows):
        cols, rows = max(0, min(65535, cols)), max(0, min(65535, rows))
        value = struct.pack("!HH", cols, rows).replace(IAC, IAC + IAC)
        self.writer.send_iac(IAC + SB + NAWS + value + IAC + SE)

    def close(self):
        self.writer.close()


async def open_telnet(*, host, port, username="", password="", cols=80, rows=24):
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
            return TelnetLink(reader, writer, username, password)
        except (OSError, asyncio.TimeoutError) as exc:
            last_error = exc
    raise ConnectFailed(f"Cannot reach {host}:{port}: {last_error}")
