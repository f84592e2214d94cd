"""A browser's websocket through PAM's own ASGI stack (pam.asgi): its Django session resolves its
user, and the terminal gets the server's ``send`` itself, not a wrapper that checks the session
on every frame (bench/README.md)."""

import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from pam.asgi import application
from sessions.consumers import TerminalConsumer
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1")


def terminal_reached_with(cookie, monkeypatch):
    """What the terminal consumer is handed when a browser with ``cookie`` opens a terminal."""
    seen = {}

    async def look(consumer, scope, receive, send):
        seen.update(user=scope["user"], send=send)

    monkeypatch.setattr(TerminalConsumer, "__call__", look)

    async def scenario():
        communicator = WebsocketCommunicator(
            application, f"/ws/sessions/{uuid.uuid4()}/terminal", headers=[(b"cookie", cookie.encode()), ORIGIN]
        )
        await communicator.send_input({"type": "websocket.connect"})
        await communicator.wait(timeout=10)
        return communicator

    communicator = async_to_sync(scenario)()
    return seen, communicator


def test_the_browsers_session_signs_the_websocket_in_and_its_send_is_the_servers(monkeypatch):
    user = make_user("operator")
    browser = Client()
    browser.force_login(user)
    seen, server = terminal_reached_with(f"sessionid={browser.cookies['sessionid'].value}", monkeypatch)
    assert seen["user"] == user
    assert seen["send"] == server.output_queue.put  # no per-frame session checks on the way out


def test_a_forged_session_cookie_signs_nobody_in(monkeypatch):
    seen, _ = terminal_reached_with("sessionid=forged0000000000000000000000000000", monkeypatch)
    assert not seen["user"].is_authenticated
