"""Driving terminal websockets in tests: in-process (Channels' communicator) or over the network."""

import asyncio
import json
import time

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from pam.asgi import application
from tests.factories import make_user_token


def token_headers(user):
    _, token = make_user_token(user)
    return [(b"authorization", f"Bearer {token}".encode()), (b"origin", b"http://127.0.0.1")]


class Terminal:
    """A websocket to a session's terminal, collecting output and control events."""

    def __init__(self, ws):
        self.ws = ws
        self.output = b""
        self.events = []
        self.closed = False  # the server hung up
        self.acknowledges = True  # answers flow-control marks as it reads them

    @classmethod
    async def open(cls, session_id, who, query="cols=100&rows=30", share_key=None):
        """Open as ``who``: a user (a personal token is made for them) or raw headers.

        ``share_key``: the session's share key, sent as API clients send it (a header).
        """
        headers = who if isinstance(who, list) else await database_sync_to_async(token_headers)(who)
        if share_key is not None:
            headers = [*headers, (b"x-share-key", share_key.encode())]
        communicator = WebsocketCommunicator(
            application, f"/ws/sessions/{session_id}/terminal?{query}", headers=headers
        )
        connected, code = await communicator.connect(timeout=10)
        if not connected:
            # As a server does once it has sent the refusal: the consumer ends now, in this
            # loop, rather than being cancelled mid-receive when the test's loop closes (its
            # channel-layer receive could then wait for good on a Redis reply that never comes).
            await communicator.disconnect(code=code)
        terminal = cls(communicator)
        terminal.accepted = connected
        terminal.close_code = code
        return terminal

    async def _receive_one(self, timeout):
        message = await self.ws.receive_output(timeout)
        if message["type"] == "websocket.close":
            self.closed = True
            self.events.append({"type": "closed", "code": message.get("code")})
            return False
        if message.get("bytes") is not None:
            self.output += message["bytes"]
        elif message.get("text") is not None:
            event = json.loads(message["text"])
            if event.get("type") == "mark" and self.acknowledges:  # drawn, as a browser says
                await self.control(type="ack", mark=event["id"])
            self.events.append(event)
        return True

    async def until(self, predicate, timeout=15.0):
        # One receive per message, with the whole remaining time: the communicator cancels the
        # application when a receive times out, so polling with short timeouts would kill it.
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or self.closed or not await self._receive_one(remaining):
                    if not predicate(self):
                        raise AssertionError(
                            f"{'websocket closed' if self.closed else 'timed out'}; "
                            f"output tail {self.output[-400:]!r}, events {self.events[-5:]}"
                        )
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"timed out; output tail {self.output[-400:]!r}, events {self.events[-5:]}"
                ) from None
        return self

    async def until_output(self, needle, timeout=15.0):
        needle = needle.encode() if isinstance(needle, str) else needle
        return await self.until(lambda t: needle in t.output, timeout)

    async def until_event(self, kind, timeout=15.0, **match):
        def found(t):
            return any(e.get("type") == kind and all(e.get(k) == v for k, v in match.items()) for e in t.events)

        await self.until(found, timeout)
        return next(e for e in reversed(self.events) if e.get("type") == kind)

    async def type(self, text):
        await self.ws.send_to(bytes_data=text.encode())

    async def control(self, **message):
        await self.ws.send_to(text_data=json.dumps(message))

    async def close(self):
        await self.ws.disconnect()


class NetTerminal(Terminal):
    """A terminal websocket to a real server process (daphne), through the `websockets` client.

    The same waiting helpers as ``Terminal``; ``closed`` tells whether the server hung up.
    """

    @classmethod
    async def open(cls, base, session_id, token, query="cols=100&rows=30", share_key=None):
        from websockets.asyncio.client import connect

        url = base.replace("http://", "ws://", 1) + f"/ws/sessions/{session_id}/terminal?{query}"
        headers = {"Authorization": f"Bearer {token}", "Origin": base}
        if share_key is not None:
            headers["X-Share-Key"] = share_key
        ws = await connect(url, additional_headers=headers, open_timeout=10)
        return cls(ws)

    async def _receive_one(self, timeout):
        from websockets.exceptions import ConnectionClosed

        try:
            message = await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed:
            self.closed = True
            self.events.append({"type": "closed", "code": self.ws.close_code})
            return False
        if isinstance(message, bytes):
            self.output += message
        else:
            event = json.loads(message)
            if event.get("type") == "mark" and self.acknowledges:
                await self.control(type="ack", mark=event["id"])
            self.events.append(event)
        return True

    async def until_closed(self, timeout=15.0):
        return await self.until(lambda t: t.closed, timeout)

    async def type(self, text):
        await self.ws.send(text.encode())

    async def control(self, **message):
        await self.ws.send(json.dumps(message))

    async def close(self):
        await self.ws.close()
