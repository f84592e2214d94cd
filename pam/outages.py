"""Outages of the services PAM leans on (PostgreSQL, Redis): how code tells them apart and logs them.

A database or channel layer that is down makes the same call fail many times a second across a
node (every heartbeat, every websocket's receive, every request). Logging each one with its
traceback buries the one line that matters, so a repeated failure is logged once with its
traceback, then once a minute as a count, then once when it recovers.
"""

import logging
import time

from django.db import DatabaseError, InterfaceError, OperationalError

try:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError:  # the embedded default runs without Redis
    RedisConnectionError = RedisTimeoutError = ()

# A backing service is unreachable (as opposed to a bug, or a query the database refused).
UNAVAILABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, ConnectionError)
DATABASE_DOWN = (OperationalError, InterfaceError)
SUMMARY_EVERY = 60.0  # seconds between two "still failing" lines


def is_outage(exc):
    """Whether ``exc`` says a backing service is unreachable (a 503, a retry), not a bug (a 500)."""
    if isinstance(exc, DatabaseError) and not isinstance(exc, DATABASE_DOWN):
        return False
    return isinstance(exc, UNAVAILABLE)


class RepeatedFailure:
    """Log a failure that repeats: first with its traceback, then a count a minute, then recovery."""

    def __init__(self, logger, what):
        self.logger = logger
        self.what = what
        self.since = None
        self.count = 0
        self.logged_at = 0.0

    @property
    def failing(self):
        return self.since is not None

    def failed(self, exc):
        now = time.monotonic()
        self.count += 1
        if self.since is None:
            self.since = self.logged_at = now
            self.logger.error("%s failed: %s", self.what, exc, exc_info=exc)
        elif now - self.logged_at >= SUMMARY_EVERY:
            self.logged_at = now
            self.logger.error(
                "%s still failing: %d times in %.0f s, last: %s", self.what, self.count, now - self.since, exc
            )

    def recovered(self):
        if self.since is None:
            return
        self.logger.warning(
            "%s works again after %.0f s (%d failures)", self.what, time.monotonic() - self.since, self.count
        )
        self.since = None
        self.count = 0


class SummariseOutages(logging.Filter):
    """A logging filter: of the records an outage causes (a request failing with 503, say), let
    the first through with its traceback, then one a minute; the others are dropped."""

    def __init__(self):
        super().__init__()
        self.last = 0.0
        self.dropped = 0

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not is_outage(exc):
            return True
        now = time.monotonic()
        if now - self.last < SUMMARY_EVERY:
            self.dropped += 1
            return False
        if self.dropped:
            record.msg = f"{record.msg} (and {self.dropped} more failures like it since the last report)"
        self.last, self.dropped = now, 0
        return True
