"""Keys the target does not echo are stored nowhere: not in the recording, the database or logs.

Recordings keep no input events (recordings.writer); this types a password at a real no-echo
prompt (bash's `read -s` on OpenSSH sshd) through the web terminal and then looks everywhere.
"""

import logging
import secrets
import time

import pytest
from asgiref.sync import async_to_sync

from sessions.services.sessions import create_session
from tests.factories import make_user
from tests.sessions.helpers import Terminal
from tests.stored import places_holding

pytestmark = pytest.mark.django_db(transaction=True)


def test_password_typed_at_a_no_echo_prompt_is_stored_nowhere(sshd, caplog):
    caplog.set_level(logging.DEBUG)
    typed = "typed-" + secrets.token_hex(10)
    started = time.time()
    owner = make_user("poweruser")
    session, _ = create_session(
        actor=owner, session_type="ssh", host=sshd.host, port=sshd.port,
        username=sshd.user, password=sshd.password,
    )

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        # The prompt is spelled apart so the echoed command line does not contain it.
        await terminal.type("read -rs -p 'Secret'': ' answer; echo; echo length-${#answer}\n")
        await terminal.until_output("Secret: ")
        await terminal.type(typed + "\n")
        await terminal.until_output(f"length-{len(typed)}")  # the shell read it, without echo
        await terminal.type("exit\n")
        await terminal.until_event("ended")
        return terminal.output

    received = async_to_sync(scenario)()
    assert typed.encode() not in received  # the prompt really did not echo
    assert places_holding(typed, started) == []
    assert typed not in caplog.text
