"""Share links in Chromium: another person watches the owner's terminal, or types into it."""

import re

import pytest
from playwright.sync_api import expect

from sessions.models import Session
from tests.browser.connections_page import sign_in
from tests.browser.terminal_page import (
    exit_shell,
    expect_state,
    open_terminal,
    run,
    screen,
    second_browser,
    sessions_end,  # noqa: F401 (a fixture)
    ssh_session,
    wait_for_screen,
    wait_for_status,
)
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("sessions_end")]


def share_link(page, mode_label):
    page.get_by_role("button", name="Share").click()
    dialog = page.locator("#share-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label(mode_label).check()
    dialog.get_by_role("button", name="Create link").click()
    link = dialog.locator("#share-link")
    expect(link).to_have_value(re.compile(r"/client/[0-9a-f-]{36}/join#key=.+"))
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.locator("#share-copied")).to_have_text(re.compile("Copied|Select the link"))
    value = link.input_value()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    return value


def test_read_only_share_link_lets_another_user_watch_but_not_type(page, sshd):
    owner = make_user("poweruser")
    watcher = make_user("operator", display_name="Wanda Watcher")
    session = ssh_session(owner, sshd)
    sign_in(page, owner)
    open_terminal(page, session)

    link = share_link(page, "watch only")
    assert session.pk and Session.objects.get(pk=session.pk).share_mode == "read-only"

    other = second_browser(page, watcher)
    sent = []
    other.on("websocket", lambda ws: ws.on("framesent", lambda frame: isinstance(frame, bytes) and sent.append(frame)))
    other.goto(link)
    expect(other).to_have_url(re.compile(r"/client/[0-9a-f-]{36}$"))  # the key went by POST, not in a URL
    expect_state(other, "active")
    expect(other.locator("#client-access")).to_have_text("watch only")
    expect(other.locator("#client-share")).to_have_count(0)
    expect(other.locator("#client-terminate")).to_have_count(0)
    expect(page.locator("#client-viewers")).to_contain_text("Wanda Watcher (watching)")

    run(page, "echo shared-$((5*5))")
    wait_for_screen(other, "shared-25")  # the watcher sees the owner's output

    run(other, "echo viewer-$((9*9))")  # and what the watcher types goes nowhere
    run(page, "echo after-$((2*2))")
    wait_for_screen(page, "after-4")
    wait_for_screen(other, "after-4")
    assert "viewer" not in screen(page)
    assert sent == []

    exit_shell(page)
    expect_state(other, "ended")
    other.context.close()
    wait_for_status(session, "ended")


def test_read_write_share_link_lets_a_collaborator_type(page, sshd):
    owner = make_user("poweruser")
    helper = make_user("operator", display_name="Carl Collaborator")
    session = ssh_session(owner, sshd)
    sign_in(page, owner)
    open_terminal(page, session)

    link = share_link(page, "watch and type")
    other = second_browser(page, helper)
    other.goto(link)
    expect_state(other, "active")
    expect(other.locator("#client-access")).to_have_text(re.compile("you can type"))
    expect(page.locator("#client-viewers")).to_contain_text("Carl Collaborator (can type)")

    run(other, "echo helper-$((8*8))")
    wait_for_screen(page, "helper-64")
    exit_shell(page)
    expect_state(other, "ended")
    other.context.close()
