"""A node killed mid-session (kill -9 of daphne), against a real sshd, over a real websocket.

Why: a crash is the one ending no code of the node gets to run. What must hold anyway is what
sessions/live.py promises: the recording on disk is readable up to the last second's flush,
nothing keeps running on the target for the dead session, and the reaper ends the session as
``lost`` once the node's heartbeat has stopped.
"""

import asyncio
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from nodes.models import Node
from recordings.models import Recording
from sessions import tasks
from sessions.models import Viewer
from sessions.services.sessions import create_session
from tests.factories import make_user, make_user_token
from tests.processes import daphne_process
from tests.sessions.helpers import NetTerminal
from tests.targets import asciinema_cat

pytestmark = pytest.mark.django_db(transaction=True)


def _parent(pid):
    """The parent of a process (from /proc), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _wait_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def test_killed_node_leaves_a_readable_recording_no_orphan_and_a_lost_session(sshd, tmp_path):
    owner = make_user("poweruser")
    session, _ = create_session(
        actor=owner, session_type="ssh", host=sshd.host, port=sshd.port, username=sshd.user,
        password=sshd.password,
    )
    _, token = make_user_token(owner)

    with daphne_process(log=tmp_path / "daphne.log") as server:

        async def scenario():
            terminal = await NetTerminal.open(server.base, session.pk, token)
            await terminal.until_event("status", state="active")
            await terminal.type("echo shell-pid-$$; echo before-crash-$((6*7))\n")
            await terminal.until_output("before-crash-42")
            shell = int(re.search(rb"shell-pid-(\d+)", terminal.output).group(1))
            sshd_session = _parent(shell)  # the sshd process serving this session
            assert sshd_session not in (None, 1)
            await asyncio.sleep(1.5)  # the recording is flushed every second
            server.kill()  # SIGKILL: no handler, no finally, no atexit runs in daphne
            server.wait()
            await terminal.until_closed()
            return shell, sshd_session

        shell, sshd_session = async_to_sync(scenario)()

    # The target: the session's shell and the sshd process serving it go away with the TCP link.
    assert _wait_gone([shell, sshd_session]) == [], "the target kept the dead session running"

    # The recording: complete lines up to the last flush, readable by asciinema.
    recording = Recording.objects.get(session=session)
    path = settings.RECORDINGS_DIR / recording.name
    assert "before-crash-42" in asciinema_cat(path)

    # The row still says active: only the reaper can know the node is dead, once it is stale.
    session.refresh_from_db()
    assert session.status == "active" and session.node
    node = Node.objects.get(pk=session.node)
    assert tasks.reap_lost_sessions() == 0  # its last heartbeat is recent: not presumed dead yet
    # Time passes: the killed process beats no more, so its row ages past NODE_STALE_AFTER.
    node.seen_at -= timedelta(seconds=settings.NODE_STALE_AFTER + 1)
    node.save(update_fields=["seen_at"])
    assert tasks.reap_lost_sessions() == 1

    session.refresh_from_db()
    assert session.status == "lost" and session.ended_at is not None
    assert session.node in session.status_message and session.secrets == ""
    assert not Viewer.objects.filter(session=session).exists()
    assert not Node.objects.filter(pk=node.pk).exists()
    recording.refresh_from_db()
    assert recording.ended_at is not None and recording.size == path.stat().st_size
    assert tasks.reap_lost_sessions() == 0  # once only
