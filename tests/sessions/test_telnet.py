"""Telnet sign-in against Debian's telnetd on loopback, through the real websocket and engine.

PAM types the stored credentials for an operator who may use them but never read them; nothing
the operator types can make PAM type the password where they would see it.
"""

import logging
import time

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from recordings.models import Recording
from sessions.services.sessions import connect_connection
from sessions.transports.telnet import SignIn
from tests.factories import make_connection, make_user
from tests.sessions.helpers import Terminal
from tests.stored import places_holding


def shared_telnet_session(telnetd, username):
    """A session an operator opened on an admin's telnet connection holding the password."""
    connection = make_connection(
        make_user("admin"), protocol="telnet", host=telnetd.host, port=telnetd.port,
        username=username, password=telnetd.password,
    )
    operator = make_user("operator")
    connection.shares.create(user=operator)
    session, _ = connect_connection(actor=operator, connection=connection)
    return session, operator


def recording_text(session):
    return (settings.RECORDINGS_DIR / Recording.objects.get(session=session).name).read_text()


@pytest.mark.django_db(transaction=True)
def test_operator_typing_password_at_the_login_prompt_never_receives_the_stored_password(telnetd, caplog):
    caplog.set_level(logging.DEBUG)
    started = time.time()
    session, operator = shared_telnet_session(telnetd, username="")

    async def scenario():
        terminal = await Terminal.open(session.pk, operator)
        await terminal.until_output("login: ", timeout=30)
        await terminal.type("password:")
        await terminal.until_output("password:")  # echoed by the target
        await terminal.type("\r")
        await terminal.until_output("Password: ")  # the target's own prompt for that user name
        await terminal.control(type="terminate")
        await terminal.until_event("ended")
        return terminal.output

    received = async_to_sync(scenario)()
    assert telnetd.password.encode() not in received
    assert telnetd.password not in recording_text(session)
    assert places_holding(telnetd.password, started) == []
    assert telnetd.password not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_operator_typing_at_the_login_prompt_cannot_derail_the_sign_in(telnetd):
    started = time.time()
    session, operator = shared_telnet_session(telnetd, username=telnetd.user)

    async def scenario():
        terminal = await Terminal.open(session.pk, operator)
        await terminal.until_output("login: ", timeout=30)
        await terminal.type("password:\r")
        await terminal.type("echo signed-in-as-$(id -un)\r")
        await terminal.until_output(f"signed-in-as-{telnetd.user}", timeout=30)
        # What was typed at the login prompt reached the shell PAM had signed in to, not login.
        assert b"password:: command not found" in terminal.output
        await terminal.type("exit\r")
        await terminal.until_event("ended", timeout=30)
        return terminal.output

    received = async_to_sync(scenario)()
    assert telnetd.password.encode() not in received
    assert telnetd.password not in recording_text(session)
    assert places_holding(telnetd.password, started) == []


@pytest.mark.django_db(transaction=True)
def test_telnet_session_signs_in_with_stored_credentials_without_showing_what_pam_typed(telnetd):
    started = time.time()
    session, operator = shared_telnet_session(telnetd, username=telnetd.user)

    async def scenario():
        terminal = await Terminal.open(session.pk, operator)
        await terminal.until_event("status", state="active", timeout=30)
        await terminal.until_output("$ ", timeout=30)
        await terminal.type("echo telnet-$((5*5))-$(id -un)\r")
        await terminal.until_output(f"telnet-25-{telnetd.user}", timeout=30)
        await terminal.type("exit\r")
        await terminal.until_event("ended", timeout=30)
        return terminal.output

    received = async_to_sync(scenario)()
    recorded = recording_text(session)
    assert b"login: " in received and "login: " in recorded  # the target's prompt is shown
    assert f"login: {telnetd.user}".encode() not in received  # the username PAM typed is not
    assert f"login: {telnetd.user}" not in recorded
    assert telnetd.password.encode() not in received and telnetd.password not in recorded
    assert places_holding(telnetd.password, started) == []


# --- the sign-in dialogue on its own ---------------------------------------------------------------

def test_a_password_prompt_before_pam_typed_the_username_is_not_answered():
    dialogue = SignIn("deploy", "s3cret")
    assert dialogue.feed(b"Password: ") == (b"Password: ", b"")
    assert SignIn("", "s3cret").done  # no username: PAM types nothing at all


def test_the_line_pam_typed_is_dropped_and_each_credential_typed_once():
    dialogue = SignIn("deploy", "s3cret")
    assert dialogue.feed(b"vm login: ") == (b"vm login: ", b"deploy\r\n")
    assert dialogue.feed(b"depl") == (b"", b"")
    assert dialogue.feed(b"oy\r\n\r\nPassword: ") == (b"\r\n\r\nPassword: ", b"s3cret\r\n")
    assert dialogue.feed(b"s3cret\r\nWelcome\r\n$ ") == (b"\r\nWelcome\r\n$ ", b"")
    assert dialogue.done
    assert dialogue.feed(b"Password: ") == (b"Password: ", b"")
