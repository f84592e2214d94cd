"""A browser's websocket: its Django session resolves its user, and its frames go straight out."""

import pytest
from asgiref.sync import async_to_sync
from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware
from django.test import Client

from accounts.authentication import WebsocketSessionMiddleware
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def connect_with(cookie):
    seen = {}

    async def application(scope, receive, send):
        seen.update(user=scope["user"], send=send)

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        pass

    stack = CookieMiddleware(WebsocketSessionMiddleware(AuthMiddleware(application)))
    scope = {"type": "websocket", "path": "/ws/x", "headers": [(b"cookie", cookie.encode())]}
    async_to_sync(stack)(scope, receive, send)
    return seen, send


def test_the_browsers_session_signs_the_websocket_in_and_its_send_is_the_servers():
    user = make_user("operator")
    browser = Client()
    browser.force_login(user)
    seen, send = connect_with(f"sessionid={browser.cookies['sessionid'].value}")
    assert seen["user"] == user
    assert seen["send"] is send  # no per-frame session checks on the way out


def test_a_forged_session_cookie_signs_nobody_in():
    seen, _ = connect_with("sessionid=forged0000000000000000000000000000")
    assert not seen["user"].is_authenticated
