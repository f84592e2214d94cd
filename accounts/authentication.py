"""How a request proves who it is: a token header or the browser session.

Tokens come as ``Authorization: Bearer <token>``, ``Authorization: Token <token>`` or
``X-API-Key: <token>``; a token is an API key (``name:secret``) or a personal token
(``pamu_…``). ``request.auth`` is an AuthContext saying which, for GET /api/me and for checks
that depend on how the caller signed in.
"""

import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from rest_framework import authentication, exceptions

from accounts.choices import AuthType
from accounts.models import UserToken
from accounts.services.tokens import TokenRefused, TokenThrottled, authenticate_token, credential_label

TOKEN_SCHEMES = ("bearer", "token")
OIDC_BACKEND = "accounts.oidc.Backend"


@dataclass(frozen=True)
class AuthContext:
    kind: str
    credential: object = None


def client_ip(request):
    """Return the client's address, believing X-Forwarded-For only from a trusted proxy."""
    meta = request.META
    return _believed_address(meta.get("REMOTE_ADDR") or None, meta.get("HTTP_X_FORWARDED_FOR", ""))


def scope_client_ip(scope):
    """``client_ip`` for a websocket handshake."""
    client = scope.get("client") or [None]
    return _believed_address(client[0], _header(scope, b"x-forwarded-for"))


def _believed_address(remote, forwarded):
    if remote and forwarded and remote in settings.TRUSTED_PROXIES:
        candidate = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return remote
    return remote


def presented_token(request):
    """Return the token in the request headers, or None when none is presented."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() in TOKEN_SCHEMES:
            value = value.strip()
            if not value:
                raise exceptions.AuthenticationFailed("Empty token in the Authorization header.")
            return value
    api_key = request.META.get("HTTP_X_API_KEY", "").strip()
    return api_key or None


class TokenAuthentication(authentication.BaseAuthentication):
    """Authenticate an API key or a personal token, applying the token's ``max_role`` cap."""

    def authenticate(self, request):
        raw = presented_token(request)
        if raw is None:
            return None
        try:
            credential = authenticate_token(raw, ip=client_ip(request))
        except TokenThrottled as exc:
            raise exceptions.Throttled(wait=exc.wait, detail=str(exc)) from None
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        user = credential.user
        if isinstance(credential, UserToken):
            user.token_cap = credential.max_role
            return user, AuthContext(AuthType.USER_TOKEN, credential)
        return user, AuthContext(AuthType.API_KEY, credential)

    def authenticate_header(self, request):
        return 'Bearer realm="pam"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser session (with CSRF checks), reporting whether it came from SSO."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        backend = request._request.session.get(BACKEND_SESSION_KEY, "")
        kind = AuthType.OIDC if backend == OIDC_BACKEND else AuthType.LOCAL
        return result[0], AuthContext(kind)


# --- websockets --------------------------------------------------------------------------------


def _header(scope, name):
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return ""


def websocket_token(scope):
    """The token in a websocket handshake's headers (API clients), or None (browsers)."""
    scheme, _, value = _header(scope, b"authorization").partition(" ")
    if scheme.lower() in TOKEN_SCHEMES and value.strip():
        return value.strip()
    return _header(scope, b"x-api-key").strip() or None


def _websocket_user(raw, ip):
    """The user a websocket's token proves, and which token it is ("" when refused)."""
    from django.contrib.auth.models import AnonymousUser

    try:
        credential = authenticate_token(raw, ip=ip)
    except TokenRefused:
        return AnonymousUser(), ""
    user = credential.user
    if isinstance(credential, UserToken):
        user.token_cap = credential.max_role
    return user, credential_label(credential)


class WebsocketTokenMiddleware:
    """Authenticate a websocket by token header; without one, the session cookie decides."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        from channels.db import database_sync_to_async

        raw = websocket_token(scope)
        if raw:
            user, credential = await database_sync_to_async(_websocket_user)(raw, scope_client_ip(scope))
            scope = dict(scope, user=user, credential=credential)
        return await self.inner(scope, receive, send)


class WebsocketSessionMiddleware:
    """The browser's Django session in a websocket's scope, as Channels' SessionMiddleware puts
    it there, but with the websocket's own ``send``. Channels wraps ``send`` to save the session
    and set its cookie on an HTTP response, which a websocket never sends; its checks ran on every
    frame all the same (5% of daphne's CPU per echoed key, bench/README.md)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        from channels.sessions import InstanceSessionWrapper

        session = InstanceSessionWrapper(scope, send)
        await session.resolve_session()
        return await self.inner(session.scope, receive, send)


class WebsocketOriginValidator:
    """Refuse a cookie-authenticated websocket from a foreign Origin (cross-site hijacking);
    a token-authenticated client proves itself without the browser's help."""

    def __init__(self, inner):
        from channels.security.websocket import AllowedHostsOriginValidator

        self.inner = inner
        self.checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        if websocket_token(scope):
            return await self.inner(scope, receive, send)
        return await self.checked(scope, receive, send)
