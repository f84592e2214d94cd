"""Websocket URL patterns."""

from django.urls import path

from sessions.consumers import TerminalConsumer

websocket_urlpatterns = [
    path("ws/sessions/<uuid:session_id>/terminal", TerminalConsumer.as_asgi()),
]
