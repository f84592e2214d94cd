"""The Redis channel layer, made to wait out an outage instead of failing whoever listens.

channels_redis raises from ``receive`` when Redis is unreachable. Channels runs each websocket
consumer's receive beside the browser's, so that exception killed the consumer: the socket
closed with 1011 and its disconnect handler never ran (the owner stayed attached, the grace
period never started, the target shell lived on). Here ``receive`` waits for Redis to come back
instead (retrying with back-off, logging the outage once: pam.outages), and whoever must act on
an outage (the node runtime: sessions.runtime.node) registers with ``on_outage``.
"""

import asyncio
import logging

from channels_redis.core import RedisChannelLayer

from pam.outages import RepeatedFailure, is_outage

logger = logging.getLogger(__name__)

RETRY_FIRST = 0.5
RETRY_MAX = 5.0


class ResilientRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outage = RepeatedFailure(logger, "the channel layer (Redis)")
        self.listeners = []

    def on_outage(self, callback):
        """Call ``callback(down)`` when Redis becomes unreachable (True) and reachable again (False)."""
        self.listeners.append(callback)

    @property
    def down(self):
        return self.outage.failing

    def _tell(self, down):
        for callback in list(self.listeners):
            try:
                callback(down)
            except Exception:
                logger.exception("an outage listener failed")

    async def receive(self, channel):
        delay = RETRY_FIRST
        while True:
            try:
                message = await super().receive(channel)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if not self.outage.failing:
                    self.outage.failed(exc)
                    self._tell(True)
                else:
                    self.outage.failed(exc)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            if self.outage.failing:
                self.outage.recovered()
                self._tell(False)
            return message
