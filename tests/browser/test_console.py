"""The web console in Chromium: sign in, open every page, use the token and user pages."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User, UserToken
from tests.browser.connections_page import sign_in
from tests.factories import make_user

pytestmark = pytest.mark.browser


def test_admin_opens_every_page_without_console_errors(page):
    admin = make_user("admin", display_name="Ada Admin")
    sign_in(page, admin)
    for label in ["Home", "Connections", "Sessions", "Recordings", "My tokens", "Users", "Audit log"]:
        page.click(f"nav >> text={label}")
        expect(page.locator("nav a[aria-current=page]")).to_have_text(label)
        page.wait_for_load_state("networkidle")
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("PAM API")
    page.goto("/admin/")
    expect(page.locator("#site-name")).to_contain_text("PAM administration")
    page.goto("/admin/accounts/user/")
    expect(page.locator("#result_list")).to_contain_text(admin.username)
    assert page.problems == []


def test_operator_sees_only_their_pages(page):
    operator = make_user("operator")
    sign_in(page, operator)
    links = page.locator("nav a").all_inner_texts()
    assert links == ["Home", "Connections", "Sessions", "Recordings", "My tokens", "API"]
    page.click("nav >> text=My tokens")
    expect(page.locator("#token-empty")).to_be_visible()
    expect(page.locator("#token-form")).to_have_count(0)  # operators may list, not create


def test_create_and_revoke_a_token_in_the_console(page):
    user = make_user("poweruser")
    sign_in(page, user)
    page.goto("/tokens")
    page.fill("input[name=name]", "laptop-script")
    page.select_option("select[name=max_role]", "operator")
    page.click("#token-form button[type=submit]")
    shown = page.locator("#token-value")
    expect(shown).to_contain_text("pamu_")
    plaintext = shown.inner_text()
    row = page.locator("#token-table tbody tr", has_text="laptop-script")
    expect(row).to_contain_text("operator")
    assert plaintext not in row.inner_text()
    token = UserToken.objects.get(user=user, name="laptop-script")
    assert token.max_role_id == "operator"
    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#token-empty")).to_be_visible()
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_duplicate_token_name_shows_the_api_error(page):
    user = make_user("poweruser")
    sign_in(page, user)
    page.goto("/tokens")
    for _ in range(2):
        page.fill("input[name=name]", "twice")
        page.click("#token-form button[type=submit]")
        page.wait_for_load_state("networkidle")
    expect(page.locator("#message")).to_contain_text("already exists")
    page.problems.clear()  # the browser logs the 409 response itself


def test_admin_changes_a_role_and_disables_a_user(page):
    admin = make_user("admin")
    target = make_user("viewer", username="vic")
    sign_in(page, admin)
    page.goto("/users")
    row = page.locator(f'#user-table tr[data-email="{target.email}"]')
    row.locator("select").select_option("poweruser")
    expect(row.locator("select")).to_have_value("poweruser")
    page.wait_for_load_state("networkidle")
    assert User.objects.get(pk=target.pk).role_id == "poweruser"
    row.get_by_role("button", name="Disable").click()
    expect(row).to_contain_text("disabled")
    assert User.objects.get(pk=target.pk).is_active is False


def test_sign_out(page):
    sign_in(page, make_user("viewer"))
    page.click("[data-testid=logout]")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/tokens")
    expect(page).to_have_url(re.compile(r"/login\?next=/tokens$"))
