"""A session's end queues its recording's indexing, and a Celery worker process indexes it."""

import subprocess
import time
import uuid

import pytest

from recordings.models import Recording
from tests.factories import make_user
from tests.processes import ROOT, VENV_BIN, pam_env, stop
from tests.recordings.conftest import record

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_indexes_the_recording_of_a_session_that_ended(sshd, settings):
    settings.RECORDING_INDEX_QUEUE = f"test-index-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [str(VENV_BIN / "celery"), "-A", "pam", "worker", "-Q", settings.RECORDING_INDEX_QUEUE, "--pool", "solo",
         "--loglevel", "WARNING"],
        cwd=ROOT, env=pam_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        recording, _ = record(make_user("poweruser"), sshd, [(["echo queued-$((6*7))\r"], "queued-42")])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            recording.refresh_from_db()
            if recording.index_status == "INDEXED":
                break
            time.sleep(0.2)
    finally:
        stop(worker)
    assert Recording.objects.get(pk=recording.pk).index_status == "INDEXED"
    assert recording.chunks.filter(text__contains="queued-42").exists()
