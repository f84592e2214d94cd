"""Single sign-on end to end: Chromium, PAM on daphne, and a real OpenID Connect provider
(panva's oidc-provider, tests/oidc/provider.mjs) on loopback."""

import json
import re

import pytest
from playwright.sync_api import expect

from accounts.choices import AuditAction
from accounts.models import AuditEvent, GroupRoleMapping, User
from accounts.session_store import SessionStore
from tests.processes import daphne, free_port, oidc_provider, pam_env

pytestmark = pytest.mark.browser


class Provider:
    """The provider's accounts, rewritten on disk whenever a test changes them."""

    def __init__(self, path):
        self.path = path
        self.accounts = {}

    def set(self, login, email, groups, name=None):
        self.accounts[login] = {"email": email, "groups": groups, "name": name or login.title()}
        self.path.write_text(json.dumps(self.accounts))


@pytest.fixture
def provider(tmp_path):
    accounts = Provider(tmp_path / "accounts.json")
    accounts.set("alice", "alice@example.com", ["engineering"], "Alice Example")
    return accounts


@pytest.fixture
def server_env():
    """Extra environment for PAM's process; a test may parametrize it."""
    return {}


@pytest.fixture
def server(transactional_db, provider, server_env):
    """PAM with single sign-on against a provider that knows PAM's callback URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with oidc_provider(provider.path, base) as issuer:
        env = pam_env(
            PAM_OIDC_ISSUER=issuer, PAM_OIDC_CLIENT_ID="pam", PAM_OIDC_CLIENT_SECRET="provider-test-secret", **server_env
        )
        with daphne(env, port=port) as url:
            yield url


def sso_sign_in(page, login, start="/login"):
    """Sign in at the provider's own login and consent pages, as a person would."""
    page.goto(start)
    page.get_by_role("link", name="Sign in with single sign-on").click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]", has_text="Continue").click()  # the provider's consent page
    page.wait_for_url(lambda url: url.startswith(page.base_url))
    page.wait_for_load_state()


def me(page):
    """GET /api/me with the browser's cookies (outside the page, so a 401 is not a page error)."""
    response = page.request.get("/api/me")
    return response.json() if response.status == 200 else response.status


def test_first_login_creates_the_user_with_the_mapped_role(page):
    GroupRoleMapping.objects.create(oidc_group="engineering", role_id="poweruser")
    sso_sign_in(page, "alice")
    expect(page.locator(".user-name")).to_have_text("Alice Example")
    user = User.objects.get(email="alice@example.com")
    assert (user.role_id, user.auth_source) == ("poweruser", "oidc")
    assert list(user.groups.values_list("name", flat=True)) == ["engineering"]
    profile = me(page)
    assert (profile["auth_type"], profile["role"], profile["groups"]) == ("oidc", "poweruser", ["engineering"])


def test_oidc_user_creates_a_personal_token(page):
    GroupRoleMapping.objects.create(oidc_group="engineering", role_id="poweruser")
    sso_sign_in(page, "alice")
    page.goto("/tokens")
    page.fill("input[name=name]", "from-sso")
    page.click("#token-form button[type=submit]")
    expect(page.locator("#token-value")).to_contain_text("pamu_")


def test_group_change_remaps_the_role_at_next_login(page, provider):
    GroupRoleMapping.objects.create(oidc_group="engineering", role_id="poweruser")
    GroupRoleMapping.objects.create(oidc_group="support", role_id="operator")
    sso_sign_in(page, "alice")
    expect(page.locator(".whoami .badge")).to_have_text("poweruser")
    page.goto("/auth/logout")
    page.get_by_role("button", name=re.compile("Yes, sign me out", re.I)).click()
    expect(page).to_have_url(re.compile(r"/login$"))
    provider.set("alice", "alice@example.com", ["support"], "Alice Example")
    sso_sign_in(page, "alice")
    expect(page.locator(".whoami .badge")).to_have_text("operator")
    user = User.objects.get(email="alice@example.com")
    assert user.role_id == "operator" and list(user.groups.values_list("name", flat=True)) == ["support"]


def test_logout_ends_pam_and_provider_sessions(page):
    sso_sign_in(page, "alice")
    expect(page.locator(".user-name")).to_be_visible()
    page.goto("/auth/logout")
    expect(page.locator("body")).to_contain_text(re.compile("sign.?out", re.I))
    page.get_by_role("button", name=re.compile("Yes, sign me out", re.I)).click()
    expect(page).to_have_url(re.compile(r"/login$"))
    assert me(page) == 401
    # The provider forgot the session too: signing in again asks for the login form.
    page.get_by_role("link", name="Sign in with single sign-on").click()
    expect(page.locator("input[name=login]")).to_be_visible()


def test_disabled_user_is_refused(page):
    User.objects.create_user("alice", "alice@example.com", None, auth_source="oidc", is_active=False)
    sso_sign_in(page, "alice")
    expect(page).to_have_url(re.compile(r"/login\?sso=failed$"))
    expect(page.locator(".error")).to_contain_text("Single sign-on did not sign you in")
    assert me(page) == 401
    assert AuditEvent.objects.filter(action=AuditAction.USER_LOGIN_FAILED, details__contains="disabled").exists()


@pytest.mark.parametrize("server_env", [{"PAM_OIDC_DEFAULT_ROLE": "none"}])
def test_user_whose_groups_map_to_no_role_is_refused_without_a_default(page, server_env):
    GroupRoleMapping.objects.create(oidc_group="finance", role_id="operator")
    sso_sign_in(page, "alice")
    expect(page).to_have_url(re.compile(r"/login\?sso=failed$"))
    assert not User.objects.filter(email="alice@example.com").exists()


def test_forged_state_is_refused(page, server):
    page.goto("/login")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    expect(page.locator("input[name=login]")).to_be_visible()
    response = page.goto(f"{server}/auth/callback?code=stolen-code&state=forged-state")
    assert response.status == 400
    page.problems.clear()
    assert me(page) == 401


def test_tampered_nonce_is_refused(page, server):
    page.goto("/login")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    # The provider will sign the nonce it was given; change PAM's expectation underneath it.
    cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(cookie["value"])
    states = session["oidc_states"]
    for state in states.values():
        state["nonce"] = "not-the-nonce-sent"
    session["oidc_states"] = states
    session.save()
    page.locator("input[name=login]").fill("alice")
    page.locator("input[name=password]").fill("x")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]", has_text="Continue").click()
    expect(page.locator("body")).to_contain_text("Bad Request")
    page.problems.clear()
    assert me(page) == 401
    assert not User.objects.filter(email="alice@example.com").exists()
    assert AuditEvent.objects.filter(action=AuditAction.USER_LOGIN_FAILED, details__contains="Nonce").exists()


def test_sso_returns_to_the_page_asked_for(page):
    page.goto("/connections?search=web")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    sso_sign_in(page, "alice", start=page.url)
    expect(page).to_have_url(re.compile(r"/connections\?search=web$"))


def test_local_accounts_keep_working_beside_sso(page):
    from tests.factories import PASSWORD, make_user

    local = make_user("admin", display_name="Local Admin")
    page.goto("/login")
    page.fill("#id_username", local.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".user-name")).to_have_text("Local Admin")
    assert me(page)["auth_type"] == "local"


def provider_sign_in(page, login):
    """The provider's login and consent pages, reached straight from a deep link."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]", has_text="Continue").click()
    page.wait_for_url(lambda url: url.startswith(page.base_url))


def test_quick_connect_link_goes_through_sso_and_opens_the_session(page, sshd):
    from connections.models import Connection
    from sessions.models import Session
    from tests.factories import make_address_book_folder, make_connection

    GroupRoleMapping.objects.create(oidc_group="engineering", role_id="operator")
    folder = make_address_book_folder("prod", groups=["engineering"])
    make_connection(
        None, "web-01", group=folder, host=sshd.host, port=sshd.port, username=sshd.user, password=sshd.password
    )
    page.goto("/api/connect?scope=shared&folder=prod&entry=web-01")
    provider_sign_in(page, "alice")  # no PAM login page in between: the link goes straight to SSO
    expect(page).to_have_url(re.compile(r"/api/connect\?scope=shared&folder=prod&entry=web-01$"))
    page.get_by_role("button", name="Connect").click()
    expect(page).to_have_url(re.compile(r"/client/[0-9a-f-]{36}$"))
    expect(page.locator("#client-state")).to_have_attribute("data-state", "active", timeout=15000)
    session = Session.objects.get()
    assert session.owner.email == "alice@example.com" and session.connection == Connection.objects.get()
    page.locator("#terminal").click()
    page.keyboard.type("exit")
    page.keyboard.press("Enter")
    expect(page.locator("#client-state")).to_have_attribute("data-state", "ended", timeout=15000)


def test_client_link_goes_through_sso(page):
    from sessions.models import Session

    # A poweruser: an ad-hoc session's page is for whoever may still open ad-hoc sessions.
    GroupRoleMapping.objects.create(oidc_group="engineering", role_id="poweruser")
    sso_sign_in(page, "alice")
    alice = User.objects.get(email="alice@example.com")
    session = Session.objects.create(
        owner=alice, session_type="ssh", host="127.0.0.1", port=22, username="root", status="ended"
    )
    page.context.clear_cookies()
    page.goto(f"/client/{session.pk}")
    provider_sign_in(page, "alice")
    expect(page).to_have_url(re.compile(rf"/client/{session.pk}$"))
    expect(page.locator("#terminal")).to_have_attribute("data-session", str(session.pk))
