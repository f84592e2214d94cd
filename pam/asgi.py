"""ASGI entry point: Django for HTTP, Channels for websockets (daphne pam.asgi:application)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pam.settings")
django_application = get_asgi_application()

from channels.auth import AuthMiddleware  # noqa: E402  (needs the app registry)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import CookieMiddleware  # noqa: E402

from accounts.authentication import (  # noqa: E402
    WebsocketOriginValidator,
    WebsocketSessionMiddleware,
    WebsocketTokenMiddleware,
)
from sessions.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": WebsocketOriginValidator(
            CookieMiddleware(
                WebsocketSessionMiddleware(AuthMiddleware(WebsocketTokenMiddleware(URLRouter(websocket_urlpatterns))))
            )
        ),
    }
)
