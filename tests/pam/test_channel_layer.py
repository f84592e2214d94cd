"""The channel layer waits on an idle channel as long as it takes (Redis: past redis-py's
default 5 s read timeout, which equals channels_redis's blocking pop)."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings


@pytest.mark.skipif(not settings.REDIS_URL, reason="the in-memory layer has no read timeout")
def test_a_receive_on_an_idle_channel_outlives_the_redis_read_timeout():
    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()

        async def send_later():
            await asyncio.sleep(7)
            await layer.send(channel, {"type": "late.message"})

        sender = asyncio.create_task(send_later())
        message = await asyncio.wait_for(layer.receive(channel), 20)
        await sender
        return message

    assert async_to_sync(scenario)()["type"] == "late.message"
