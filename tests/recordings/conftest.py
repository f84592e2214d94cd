"""Real recordings for the recordings tests: sessions against the OpenSSH target, typed into
through the terminal websocket, ended, and (where a test says so) indexed."""

import asyncio
import time

from asgiref.sync import async_to_sync

from recordings.models import Recording
from sessions.services.sessions import create_session
from tests.conftest import bearer
from tests.factories import make_user_token
from tests.sessions.helpers import Terminal


def as_user(user):
    """An API client signed in as ``user`` with a personal token."""
    _, token = make_user_token(user)
    return bearer(token)


def record(owner, target, steps, pause=0.0):
    """Open an SSH session as ``owner``, run ``steps`` and end it; return ``(recording, moments)``.

    Each step is ``(keys, expected output)``: the keys are typed one at a time, as a person
    types. ``moments[i]`` is ``(before, after)``: seconds from the session's start just before
    step i's first key and once its output was seen; ``pause`` seconds separate the steps.
    """
    session, _ = create_session(
        actor=owner, session_type="ssh", host=target.host, port=target.port, username=target.user,
        password=target.password,
    )
    moments = []

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        started = time.monotonic()
        await terminal.until_output("$ ")
        for keys, expected in steps:
            await asyncio.sleep(pause)
            before = time.monotonic() - started
            for key in keys:
                await terminal.type(key)
                await asyncio.sleep(0.01)
            await terminal.until_output(expected)
            moments.append((before, time.monotonic() - started))
        await terminal.type("exit\r")
        await terminal.until_event("ended")
        await terminal.close()

    async_to_sync(scenario)()
    return Recording.objects.get(session=session), moments
