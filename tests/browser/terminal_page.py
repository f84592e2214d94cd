"""The terminal page in Chromium, as the browser tests drive it: what is on the screen, typing,
opening sessions and connections, pasting, a second person's browser; and ``sessions_end``,
which fails a test that leaves a session open (no SSH connection may outlive it)."""

import time

import pytest
from playwright.sync_api import expect

from sessions.choices import LIVE_STATUSES
from sessions.models import Session
from sessions.services.sessions import create_session
from tests.browser.connections_page import sign_in

SCREEN = """() => {
  const buffer = window.pamTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines.join("\\n");
}"""


@pytest.fixture
def sessions_end(transactional_db):
    """Fail a test that leaves a session open: no SSH connection may outlive it."""
    yield
    left = list(Session.objects.filter(status__in=LIVE_STATUSES).values_list("pk", "status"))
    assert left == [], "sessions left open"


def watch_problems(new_page, problems, base):
    """What the ``page`` fixture checks, for pages it did not open (new tabs, other contexts)."""

    def ours(url):
        return (url or "").startswith(base)

    new_page.on(
        "console",
        lambda m: m.type == "error" and ours(m.location.get("url") or new_page.url) and problems.append(f"console: {m.text}"),
    )
    new_page.on("pageerror", lambda exc: ours(new_page.url) and problems.append(f"page error: {exc}"))
    new_page.on("response", lambda r: r.status >= 400 and ours(r.url) and problems.append(f"HTTP {r.status}: {r.url}"))


def new_tabs_watched(page):
    """Check every tab the page's context opens from now on as the ``page`` fixture checks it."""
    page.context.on("page", lambda tab: watch_problems(tab, page.problems, page.base_url))


def second_browser(page, user):
    """A separate browser context (another person), signed in as ``user``."""
    context = page.context.browser.new_context(base_url=page.base_url)
    other = context.new_page()
    watch_problems(other, page.problems, page.base_url)
    sign_in(other, user)
    return other


def screen(page):
    return page.evaluate(SCREEN)


def wait_for_screen(page, text, timeout=15000):
    page.wait_for_function(f"text => ({SCREEN})().includes(text)", arg=text, timeout=timeout)


def expect_state(page, state, timeout=15000):
    try:
        expect(page.locator("#client-state")).to_have_attribute("data-state", state, timeout=timeout)
    except AssertionError:
        notice = page.locator("#client-notice").text_content()
        raise AssertionError(f"terminal not {state}: {notice}") from None


def run(page, command):
    page.locator("#terminal").click()
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def exit_shell(page):
    run(page, "exit")
    expect_state(page, "ended")


def wait_for_status(session, *statuses, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.refresh_from_db()
        if session.status in statuses:
            return session
        time.sleep(0.1)
    raise AssertionError(f"session is {session.status}, not {statuses}")


def ssh_session(owner, sshd, **extra):
    fields = {"host": sshd.host, "port": sshd.port, "username": sshd.user, "password": sshd.password, **extra}
    session, _ = create_session(actor=owner, session_type="ssh", **fields)
    return session


def open_terminal(page, session, query=""):
    page.goto(f"/client/{session.pk}{query}")
    expect_state(page, "active")


def open_connection(page, name):
    page.goto("/connections")
    expect(page.locator("#conn-tree")).to_have_attribute("aria-busy", "false")
    page.locator(f'#conn-tree li.tree-conn[data-name="{name}"] .tree-label').click()
    expect(page.locator("#detail-title")).to_have_text(name)


def paste(page, text):
    """Paste as the browser does: a paste event, with the clipboard's text, on xterm's textarea."""
    page.evaluate(
        """text => {
          const data = new DataTransfer();
          data.setData("text/plain", text);
          const area = document.querySelector("#terminal .xterm-helper-textarea");
          area.focus();
          area.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
        }""",
        text,
    )
