import os

import pytest
from playwright.sync_api import sync_playwright

from tests.processes import daphne

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module", autouse=True)
def _allow_sync_orm_beside_playwright():
    # Playwright's sync API runs an event loop in the test thread; the tests' own ORM calls
    # are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture(scope="module")
def browser():
    # Module scope: Playwright's sync API keeps an event loop in this thread while it runs,
    # which would break async_to_sync in tests collected after the browser tests.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(transactional_db):
    """A real daphne process serving PAM on the test database."""
    with daphne() as base:
        yield base


@pytest.fixture
def page(browser, server):
    """A fresh browser page that fails the test on any console error, uncaught exception or
    failed request of PAM's own pages (third-party pages, such as a sign-in provider's, are
    not ours to police)."""
    context = browser.new_context(base_url=server)
    page = context.new_page()
    problems = []

    def ours(url):
        return (url or "").startswith(server)

    def on_console(message):
        if message.type == "error" and ours(message.location.get("url") or page.url):
            problems.append(f"console: {message.text} at {message.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: ours(page.url) and problems.append(f"page error: {exc}"))
    page.on("response", lambda r: r.status >= 400 and ours(r.url) and problems.append(f"HTTP {r.status}: {r.url}"))
    # A request the browser cancels because the page navigated on (ERR_ABORTED) has not failed.
    page.on(
        "requestfailed",
        lambda r: ours(r.url) and "ERR_ABORTED" not in (r.failure or "") and problems.append(f"failed: {r.url} {r.failure}"),
    )
    page.problems = problems
    page.base_url = server
    yield page
    context.close()
    assert problems == []
