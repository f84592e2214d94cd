"""The Recordings pages in Chromium: search inside recordings, open a hit, play at that moment."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from recordings import indexing
from tests.browser.connections_page import sign_in
from tests.factories import make_user
from tests.recordings.conftest import record

pytestmark = pytest.mark.browser


def recorded(owner, target, steps, pause):
    # record() drives the session on its own event loop: not in this thread, where Playwright's runs.
    with ThreadPoolExecutor(1) as thread:
        recording, moments = thread.submit(record, owner, target, steps, pause).result()
    indexing.index_recording(recording.pk)
    return recording, moments


def player_time(page):
    return page.evaluate("window.pam.player.getCurrentTime()")


def test_a_search_hit_opens_playback_at_its_moment(page, sshd):
    owner = make_user("poweruser")
    steps = [(["echo warm-up\r"], "warm-up\r\n"), (["echo needle-$((6*7))\r"], "needle-42\r\n")]
    recording, moments = recorded(owner, sshd, steps, pause=2.0)
    sign_in(page, owner)
    page.click("nav >> text=Recordings")
    expect(page.locator("[data-testid=recording-table] tbody tr")).to_have_count(1)
    expect(page.locator(f"tr[data-recording='{recording.name}']")).to_contain_text("Indexed")

    page.fill("[data-testid=recording-search]", "needle-42")
    hits = page.locator("[data-testid=search-hits] a.hit")
    expect(hits).to_have_count(1)  # the output (the command line shows $((6*7)))
    expect(hits.first.locator("mark")).to_have_text("needle-42")
    at = float(hits.last.get_attribute("data-at"))
    before, after = moments[1]
    assert before - 0.25 <= at <= after + 0.25

    hits.last.click()
    page.wait_for_url(f"**/recordings/{recording.name}?t=*")
    page.wait_for_function("window.pam.player && window.pam.player.getDuration() > 0")
    assert abs(player_time(page) - at) < 0.5
    expect(page.locator(".ap-player")).to_be_visible()

    # The typed commands beside the player: clicking one seeks there.
    commands = page.locator("[data-testid=command-list] button.command")
    expect(commands).to_have_count(3)  # warm-up, needle, exit
    expect(commands.nth(0)).to_contain_text("echo warm-up")
    commands.nth(1).click()
    page.wait_for_function(f"Math.abs(window.pam.player.getCurrentTime() - {commands.nth(1).get_attribute('data-at')}) < 0.5")
    page.select_option("[data-testid=player-speed]", "2")
    page.wait_for_function("window.pam.player && window.pam.player.getDuration() > 0")


def test_a_search_finds_nothing_in_recordings_the_user_may_not_read(page, sshd):
    owner, other = make_user("poweruser"), make_user("poweruser")
    recorded(owner, sshd, [(["echo private-$((6*7))\r"], "private-42")], pause=0)
    sign_in(page, other)
    page.goto("/recordings?q=private-42")
    expect(page.locator("[data-testid=no-hits]")).to_be_visible()
    expect(page.locator("[data-testid=recording-table] tbody")).to_contain_text("No recordings match.")
