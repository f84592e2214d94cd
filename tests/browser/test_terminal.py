"""The session terminal in Chromium against a real OpenSSH sshd: typing, opening from the
connections page, credentials asked at connect time, ephemeral keys, paste rules, the
owner's files panel and ending sessions from the sessions page.

Every test ends the sessions it opens (``exit`` or End); ``sessions_end`` checks it. Share
links are in test_terminal_sharing.py.
"""

import re

import pytest
from playwright.sync_api import expect

from connections.models import Connection, Share
from sessions.models import Session
from sessions.services.sessions import create_session
from tests.browser.connections_page import sign_in
from tests.browser.terminal_page import (
    exit_shell,
    expect_state,
    new_tabs_watched,
    open_connection,
    open_terminal,
    paste,
    run,
    screen,
    second_browser,
    sessions_end,  # noqa: F401 (a fixture)
    ssh_session,
    wait_for_screen,
    wait_for_status,
    watch_problems,
)
from tests.factories import make_connection, make_user
from tests.targets import account_dir, account_file

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("sessions_end")]


# --- the terminal page ----------------------------------------------------------------------------


def test_poweruser_runs_a_command_and_exit_ends_the_session(page, sshd):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    sign_in(page, owner)
    open_terminal(page, session)
    expect(page.locator("#client-state")).to_have_text("connected")
    expect(page.locator("#client-access")).to_be_hidden()  # the owner types

    run(page, "echo hello-$((6*7))")
    wait_for_screen(page, "hello-42")

    exit_shell(page)
    expect(page.locator("#client-notice")).to_contain_text("The target closed the session.")
    expect(page.locator("#client-share")).to_be_hidden()
    assert wait_for_status(session, "ended").ended_at is not None


def test_output_far_beyond_the_pause_threshold_flows_as_the_page_draws_it(page, sshd):
    """Reading from the target pauses at 4 MiB not proven drawn: the page names each mark back
    once xterm has drawn what came before it, so 12 MB arrive whole."""
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd, recording_enabled=False)
    sign_in(page, owner)
    open_terminal(page, session)
    run(page, "head -c 12000000 /dev/zero | tr '\\0' A | fold -w 1000; echo BIG-$((6*7))-DONE")
    wait_for_screen(page, "BIG-42-DONE", timeout=60000)
    exit_shell(page)
    assert wait_for_status(session, "ended").bytes_out > 12_012_000


def test_terminal_fills_the_window_and_follows_its_size(page, sshd):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    sign_in(page, owner)
    page.set_viewport_size({"width": 1200, "height": 800})
    open_terminal(page, session)

    def fills():
        box = page.locator("#terminal").bounding_box()
        rows = page.locator("#terminal .xterm-screen").bounding_box()
        size = page.viewport_size
        cell = rows["height"] / page.evaluate("window.pamTerminal.rows")
        assert box["width"] == size["width"] and box["y"] + box["height"] == size["height"]
        assert size["width"] - rows["width"] < 40  # a scrollbar and less than a column or two
        assert box["height"] - rows["height"] < cell + 8
        return page.evaluate("[window.pamTerminal.cols, window.pamTerminal.rows]")

    cols, rows = fills()
    run(page, "stty size")
    wait_for_screen(page, f"{rows} {cols}")

    page.set_viewport_size({"width": 700, "height": 420})
    page.wait_for_function(f"window.pamTerminal.cols < {cols} && window.pamTerminal.rows < {rows}")
    small_cols, small_rows = fills()
    run(page, "clear; stty size")
    wait_for_screen(page, f"{small_rows} {small_cols}")  # the target's pty follows the window
    exit_shell(page)


def test_ephemeral_key_banner_shows_the_public_key_and_continue_connects(page, sshd):
    owner = make_user("poweruser")
    session, _ = create_session(
        actor=owner, session_type="ssh", host=sshd.host, port=sshd.port, username=sshd.user, generate_keypair=True
    )
    sign_in(page, owner)
    page.goto(f"/client/{session.pk}")

    banner = page.locator("#client-banner")
    expect(banner).to_be_visible()
    expect_state(page, "awaiting_continue")
    shown = page.locator("#client-public-key").inner_text().strip()
    assert shown == session.public_key.strip() and shown.startswith("ssh-ed25519 ")
    assert "PRIVATE KEY" not in page.content()
    sshd.authorize(shown)

    banner.get_by_role("button", name="Continue").click()
    expect(banner).to_be_hidden()
    expect_state(page, "active")
    run(page, "echo key-$((7*6))")
    wait_for_screen(page, "key-42")
    exit_shell(page)
    assert wait_for_status(session, "ended").secrets == ""


@pytest.mark.parametrize("disable_paste", [True, False])
def test_paste_reaches_the_shell_only_when_allowed(page, sshd, disable_paste):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd, disable_paste=disable_paste)
    sign_in(page, owner)
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda frame: isinstance(frame, bytes) and sent.append(frame)))
    open_terminal(page, session)

    before = len(sent)
    paste(page, "echo pasted-$((3*4))")
    page.locator("#terminal").click()
    page.keyboard.press("Enter")
    run(page, "echo done-$((1+1))")
    wait_for_screen(page, "done-2")
    pasted = b"".join(sent[before:])
    if disable_paste:
        expect(page.locator("#client-notice")).to_contain_text("Pasting is turned off")
        assert b"pasted" not in pasted
        assert "pasted-12" not in screen(page)
    else:
        assert b"echo pasted-$((3*4))" in pasted
        wait_for_screen(page, "pasted-12")
    exit_shell(page)


# --- sharing -------------------------------------------------------------------------------------


# --- opening sessions from the connections page ---------------------------------------------------


def test_operator_opens_a_session_on_a_connection_shared_with_them(page, sshd):
    owner = make_user("poweruser")
    operator = make_user("operator")
    connection = make_connection(
        owner, "shell-box", host=sshd.host, port=sshd.port, username=sshd.user, password=sshd.password
    )
    Share.objects.create(connection=connection, user=operator, created_by=owner)
    sign_in(page, operator)
    new_tabs_watched(page)
    open_connection(page, "shell-box")
    expect(page.locator("#connect-form")).to_be_hidden()

    with page.context.expect_page() as opened:
        page.locator("#conn-detail").get_by_role("button", name="Open session").click()
    tab = opened.value
    expect(tab).to_have_url(re.compile(r"/client/[0-9a-f-]{36}$"))
    expect_state(tab, "active")
    run(tab, "echo box-$((6*7))")
    wait_for_screen(tab, "box-42")
    exit_shell(tab)

    session = Session.objects.get(connection=connection)
    assert session.owner == operator
    wait_for_status(session, "ended")


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_open_session_shows_only_for_terminal_protocols_and_connect_permission(page, role):
    owner = make_user("poweruser")
    user = make_user(role)
    for name, protocol in [("term-ssh", "ssh"), ("term-telnet", "telnet"), ("files", "sftp"), ("desk", "rdp")]:
        connection = make_connection(owner, name, protocol=protocol, password="secret")
        Share.objects.create(connection=connection, user=user, created_by=owner)
    sign_in(page, user)
    for name in ["term-ssh", "term-telnet", "files", "desk"]:
        open_connection(page, name)
        expected = 1 if role == "operator" and name != "desk" else 0
        expect(page.locator("#open-session")).to_have_count(expected)


def test_connection_that_prompts_asks_for_the_password_inline(page, sshd):
    owner = make_user("poweruser")
    connection = make_connection(
        owner, "asks-box", host=sshd.host, port=sshd.port, username=sshd.user, prompt_credentials=True
    )
    sign_in(page, owner)
    new_tabs_watched(page)
    open_connection(page, "asks-box")
    posts = []
    page.on("request", lambda r: r.method == "POST" and "/connect" in r.url and posts.append(r.post_data_json))

    page.locator("#open-session").click()
    form = page.locator("#connect-form")
    expect(form).to_be_visible()
    expect(form.get_by_label("Username")).to_have_value(sshd.user)
    expect(form.get_by_label("Password")).to_be_focused()
    assert posts == []  # the connection says it asks: no request without the password

    form.get_by_label("Password").fill(sshd.password)
    with page.context.expect_page() as opened:
        form.get_by_role("button", name="Connect").click()
    tab = opened.value
    expect_state(tab, "active")
    run(tab, "echo typed-$((6*7))")
    wait_for_screen(tab, "typed-42")
    exit_shell(tab)

    assert posts == [{"username": sshd.user, "password": sshd.password}]
    expect(form).to_be_hidden()
    expect(form.get_by_label("Password")).to_have_value("")
    connection.refresh_from_db()
    assert connection.password == ""  # used once, never stored
    session = wait_for_status(Session.objects.get(connection=connection), "ended")
    assert session.secrets == ""


def test_password_form_appears_when_the_api_asks_for_credentials(page, sshd):
    owner = make_user("poweruser")
    connection = make_connection(
        owner, "changed-box", host=sshd.host, port=sshd.port, username=sshd.user, password="stale"
    )
    sign_in(page, owner)
    new_tabs_watched(page)
    open_connection(page, "changed-box")
    # Someone sets the connection to ask after the page loaded it: the API's 400 brings the form.
    Connection.objects.filter(pk=connection.pk).update(prompt_credentials=True)

    page.locator("#open-session").click()
    form = page.locator("#connect-form")
    expect(form).to_be_visible()
    expect(form.locator("#connect-error")).to_be_hidden()
    # The refused first attempt is the expected path here: the browser logs its 400 itself.
    assert page.problems and all("400" in p and "/connect" in p for p in page.problems)
    page.problems.clear()

    form.get_by_label("Password").fill(sshd.password)
    with page.context.expect_page() as opened:
        form.get_by_label("Password").press("Enter")
    tab = opened.value
    expect_state(tab, "active")
    run(tab, "echo asked-$((6*7))")
    wait_for_screen(tab, "asked-42")
    exit_shell(tab)
    wait_for_status(Session.objects.get(connection=connection), "ended")


# --- the sessions page -----------------------------------------------------------------------------


def test_sessions_page_lists_the_owners_session_and_an_admin_ends_it(page, sshd):
    owner = make_user("poweruser")
    admin = make_user("admin", display_name="Ada Admin")
    session = ssh_session(owner, sshd)
    sign_in(page, owner)
    open_terminal(page, session)

    listing = page.context.new_page()
    watch_problems(listing, page.problems, page.base_url)
    listing.goto("/sessions")
    row = listing.locator(f'#session-table tr[data-session="{session.pk}"]')
    expect(row).to_contain_text(f"{sshd.user}@{sshd.host}:{sshd.port}")
    expect(row).to_contain_text("active")
    expect(row.get_by_role("link", name="Open")).to_have_attribute("href", f"/client/{session.pk}")
    expect(row.get_by_role("button", name="End")).to_be_visible()
    expect(row.get_by_role("link", name="Watch")).to_have_count(0)
    assert sshd.password not in listing.content()
    listing.close()

    other = second_browser(page, admin)
    other.goto("/sessions")
    row = other.locator(f'#session-table tr[data-session="{session.pk}"]')
    expect(row).to_contain_text(owner.email)
    expect(row.get_by_role("link", name="Open")).to_have_count(0)
    with other.context.expect_page() as opened:
        row.get_by_role("link", name="Watch").click()
    watching = opened.value
    watch_problems(watching, page.problems, page.base_url)
    expect_state(watching, "active")
    expect(watching.locator("#client-access")).to_contain_text("supervising")
    expect(page.locator("#client-viewers")).to_contain_text("Ada Admin (supervisor)")
    run(page, "echo seen-$((4*4))")
    wait_for_screen(watching, "seen-16")

    other.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="End").click()
    expect(row).to_have_count(0)  # gone from the open sessions
    expect_state(page, "terminated")
    expect(page.locator("#client-notice")).to_contain_text(f"Ended by {admin.email}")
    expect_state(watching, "terminated")
    assert wait_for_status(session, "terminated").ended_by == admin
    other.context.close()


def test_owner_browses_uploads_and_downloads_files_of_the_target(page, sshd):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd, enable_drive=True)
    with account_dir("pam-drive-ui-") as directory:
        account_file(directory, "marker.txt", b"made by the test\n")
        sign_in(page, owner)
        open_terminal(page, session)

        page.click("#client-files")
        expect(page.locator("#files-path")).to_have_text(str(directory.parent))  # the login directory
        page.locator("#files-entries .files-dir", has_text=f"{directory.name}/").click()
        expect(page.locator("#files-path")).to_have_text(str(directory))
        marker = page.locator("#files-entries tr", has_text="marker.txt")
        expect(marker).to_contain_text("17 B")

        with page.expect_download() as download:
            marker.get_by_role("link", name="Download").click()
        assert open(download.value.path(), "rb").read() == b"made by the test\n"

        page.set_input_files("#files-upload", files=[{"name": "up.txt", "mimeType": "text/plain",
                                                      "buffer": b"from the browser"}])
        page.click("#files-upload-button")
        expect(page.locator("#files-status")).to_have_text(f"Uploaded {directory / 'up.txt'} (16 B).")
        expect(page.locator("#files-entries")).to_contain_text("up.txt")
        assert (directory / "up.txt").read_bytes() == b"from the browser"

        page.click("#files-close")
        exit_shell(page)
