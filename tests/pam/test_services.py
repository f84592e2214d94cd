"""The background pieces on the configured backend: Celery broker and channel layer.

On the embedded default these are the filesystem broker and the in-memory layer; with
PAM_REDIS_URL set, the same tests run against the real Redis.
"""

import subprocess
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from accounts.models import LoginSession
from accounts.tasks import purge_expired_logins
from tests.processes import ROOT, VENV_BIN, pam_env, stop


@pytest.mark.django_db(transaction=True)
def test_celery_worker_process_runs_a_task_through_the_broker():
    now = timezone.now()
    LoginSession.objects.create(session_key="expired", session_data="", expire_date=now - timedelta(hours=1))
    LoginSession.objects.create(session_key="current", session_data="", expire_date=now + timedelta(hours=1))
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [str(VENV_BIN / "celery"), "-A", "pam", "worker", "-Q", queue, "--pool", "solo", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=pam_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        result = purge_expired_logins.apply_async(queue=queue)
        assert result.get(timeout=60) == 1
    finally:
        stop(worker)
    assert list(LoginSession.objects.values_list("session_key", flat=True)) == ["current"]


def test_channel_layer_delivers_group_messages():
    layer = get_channel_layer()
    group = f"test.{uuid.uuid4().hex}"

    async def round_trip():
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        await layer.group_send(group, {"type": "session.output", "data": "hello"})
        message = await layer.receive(channel)
        await layer.group_discard(group, channel)
        return message

    assert async_to_sync(round_trip)() == {"type": "session.output", "data": "hello"}
