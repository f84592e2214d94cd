"""Brute-force protection: login lockouts (django-axes) and failed-token throttling (DRF).

Both count in the "throttle" cache (Redis when PAM_REDIS_URL is set), so every node sees the same
counts, and both take the client address from ``accounts.authentication.client_ip``, which
believes X-Forwarded-For only from a trusted proxy. Password logins are counted per account and
per address; tokens per address, and only refused ones: a busy client with a good token is never
slowed down, while a client guessing tokens is stopped before its guesses are even checked.
"""

import math

from django.conf import settings
from django.core.cache import caches
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.connection import ConnectionProxy
from rest_framework.throttling import SimpleRateThrottle

MAX_DOUBLINGS = 16


def failure_limit(request, credentials=None):
    """Failed sign-ins before a lockout (axes' AXES_FAILURE_LIMIT)."""
    return settings.LOGIN_FAILURE_LIMIT


def _lockout(failures):
    limit = settings.LOGIN_FAILURE_LIMIT
    doublings = min(max(failures - limit, 0) // limit, MAX_DOUBLINGS)
    return min(settings.LOGIN_LOCKOUT * 2**doublings, settings.LOGIN_LOCKOUT_MAX)


def login_lockout(request):
    """How long a lockout lasts (and failures are remembered): LOGIN_LOCKOUT, doubled for every
    further LOGIN_FAILURE_LIMIT failures, at most LOGIN_LOCKOUT_MAX (axes' AXES_COOLOFF_TIME)."""
    if request is None:
        return settings.LOGIN_LOCKOUT
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:  # asked while the failure now being recorded is not yet counted
        from axes.handlers.proxy import AxesProxyHandler

        failures = AxesProxyHandler.get_failures(request) + 1
    return _lockout(failures)


def lockout_parameters(request_or_attempt, credentials=None):
    """Count per account and per address; a sign-in naming no account (single sign-on) per
    address only, so that such attempts do not all share one counter."""
    from axes.helpers import get_client_username
    from axes.models import AccessBase

    if isinstance(request_or_attempt, AccessBase):
        username = request_or_attempt.username
    else:
        username = get_client_username(request_or_attempt, credentials)
    return ["username", "ip_address"] if username else ["ip_address"]


def _in_words(seconds):
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{math.ceil(minutes / 60)} hours"


def lockout_response(request, original_response=None, credentials=None):
    """Answer a locked-out sign-in: 429 with Retry-After; JSON on API paths, else a page."""
    from pam.rest.errors import is_api_path  # imports DRF's views, which import this app's auth

    seconds = int(login_lockout(request).total_seconds())
    message = f"Too many failed sign-ins. Try again in {_in_words(seconds)}."
    if is_api_path(request.path):
        response = JsonResponse({"error": message}, status=429)
    else:
        response = render(request, "accounts/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response


class FailedTokenThrottle(SimpleRateThrottle):
    """Refuse token authentication from an address with more than TOKEN_FAILURE_RATE refusals.

    DRF's throttles record every request they allow; this one records only refused tokens
    (``failed``), and ``allow_request`` only looks. Token authentication (accounts.services.tokens)
    asks it before checking a token, for the API and websockets alike.
    """

    scope = "token_failure"
    cache = ConnectionProxy(caches, "throttle")

    def __init__(self, ip):
        self.ip = ip or "unknown"
        super().__init__()

    def get_rate(self):
        return settings.TOKEN_FAILURE_RATE

    def get_cache_key(self, request=None, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.ip}

    def allow_request(self, request=None, view=None):
        self.key = self.get_cache_key()
        self.now = self.timer()
        self.history = [at for at in self.cache.get(self.key, []) if at > self.now - self.duration]
        return len(self.history) < self.num_requests

    def failed(self):
        """Count one refused token from this address."""
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
