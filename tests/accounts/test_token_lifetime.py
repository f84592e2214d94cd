"""Tokens are minted only from an interactive login, and every token and API key expires."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.admin.utils import quote
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, UserToken
from tests.conftest import bearer
from tests.factories import make_api_key, make_user, make_user_token

pytestmark = pytest.mark.django_db

MAX_DAYS = 90


def days_ahead(days):
    return (timezone.now() + timedelta(days=days)).isoformat()


def assert_expires_at_the_maximum(expires_at, days=MAX_DAYS):
    expected = timezone.now() + timedelta(days=days)
    assert abs(expires_at - expected) < timedelta(minutes=1)


# --- interactive login only --------------------------------------------------------------------


@pytest.mark.parametrize("credential", ["api_key", "user_token"])
def test_admins_token_cannot_mint_personal_tokens_for_others(credential):
    admin = make_user("admin")
    raw = make_api_key(admin)[1] if credential == "api_key" else make_user_token(admin)[1]
    target = make_user("operator")
    response = bearer(raw).post(
        "/api/admin/user-tokens", {"email": target.email, "name": "minted"}, format="json", REMOTE_ADDR="127.0.0.1"
    )
    assert response.status_code == 403
    assert not UserToken.objects.filter(user=target).exists()


def test_signed_in_admin_mints_a_personal_token_for_another_user(admin_client):
    target = make_user("operator")
    response = admin_client.post("/api/admin/user-tokens", {"email": target.email, "name": "ops"}, format="json")
    assert response.status_code == 201
    assert UserToken.objects.get(user=target).created_by == admin_client.user


# --- maximum lifetime: personal tokens --------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/me/tokens", "/api/admin/user-tokens"])
def test_token_without_expiry_expires_at_the_maximum(admin_client, url):
    body = {"name": "no-expiry"}
    if url == "/api/admin/user-tokens":
        body["email"] = make_user("operator").email
    response = admin_client.post(url, body, format="json")
    assert response.status_code == 201 and response.json()["expires_at"] is not None
    assert_expires_at_the_maximum(UserToken.objects.get(name="no-expiry").expires_at)


@pytest.mark.parametrize("url", ["/api/me/tokens", "/api/admin/user-tokens"])
def test_token_expiry_beyond_the_maximum_is_400_and_saves_nothing(admin_client, url):
    body = {"name": "forever", "expires_at": days_ahead(MAX_DAYS + 1)}
    if url == "/api/admin/user-tokens":
        body["email"] = make_user("operator").email
    response = admin_client.post(url, body, format="json")
    assert response.status_code == 400
    assert "expires_at" in response.json()["fields"] and f"at most {MAX_DAYS} days" in response.json()["error"]
    assert not UserToken.objects.exists()


def test_token_lifetime_follows_the_setting(admin_client, settings):
    settings.TOKEN_MAX_LIFETIME_DAYS = 7
    too_long = admin_client.post("/api/me/tokens", {"name": "a", "expires_at": days_ahead(8)}, format="json")
    assert too_long.status_code == 400 and "7 days" in str(too_long.json())
    within = admin_client.post("/api/me/tokens", {"name": "b", "expires_at": days_ahead(6)}, format="json")
    assert within.status_code == 201
    default = admin_client.post("/api/me/tokens", {"name": "c"}, format="json")
    assert_expires_at_the_maximum(UserToken.objects.get(pk=default.json()["id"]).expires_at, days=7)


# --- maximum lifetime: API keys ---------------------------------------------------------------


@pytest.fixture
def admin_browser():
    client = Client()
    client.force_login(make_user("admin"))
    return client


def test_api_key_added_in_admin_without_expiry_expires_at_the_maximum(admin_browser):
    owner = make_user("operator")
    response = admin_browser.post(reverse("admin:accounts_apikey_add"), {"name": "job", "user": owner.pk})
    assert response.status_code == 200
    assert_expires_at_the_maximum(ApiKey.objects.get(name="job").expires_at)


def test_api_key_expiry_beyond_the_maximum_is_refused_in_admin(admin_browser):
    owner = make_user("operator")
    late = timezone.localtime(timezone.now() + timedelta(days=MAX_DAYS + 5))
    response = admin_browser.post(
        reverse("admin:accounts_apikey_add"),
        {"name": "job", "user": owner.pk, "expires_at_0": f"{late:%Y-%m-%d}", "expires_at_1": f"{late:%H:%M:%S}"},
    )
    assert response.status_code == 200 and f"at most {MAX_DAYS} days" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_api_key_expiry_cannot_be_cleared_in_admin(admin_browser):
    key, _ = make_api_key(make_user("operator"))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() + timedelta(days=1))
    response = admin_browser.post(
        reverse("admin:accounts_apikey_change", args=[quote(key.pk)]), {"expires_at_0": "", "expires_at_1": "", "allowed_ips": ""}
    )
    assert response.status_code == 302
    assert_expires_at_the_maximum(ApiKey.objects.get(pk=key.pk).expires_at)


def test_command_line_api_key_expires_at_the_maximum():
    make_user("operator", username="svc")
    call_command("create_api_key", "cli-key", "--user", "svc")
    assert_expires_at_the_maximum(ApiKey.objects.get(name="cli-key").expires_at)


def test_command_line_api_key_beyond_the_maximum_is_refused():
    make_user("operator", username="svc")
    with pytest.raises(CommandError, match="at most"):
        call_command("create_api_key", "cli-key", "--user", "svc", "--expires-at", days_ahead(MAX_DAYS + 1))
    assert not ApiKey.objects.exists()


# --- existing tokens ---------------------------------------------------------------------------


def test_migration_gives_never_expiring_tokens_the_maximum_lifetime():
    owner = make_user("operator")
    key, _ = make_api_key(owner)
    token, _ = make_user_token(owner)
    kept = timezone.now() + timedelta(days=3)
    dated, _ = make_user_token(owner, expires_at=kept)
    ApiKey.objects.update(expires_at=None)
    UserToken.objects.filter(pk=token.pk).update(expires_at=None)
    migration = importlib.import_module("accounts.migrations.0005_token_lifetime")
    migration.set_expiry(apps, None)
    assert_expires_at_the_maximum(ApiKey.objects.get(pk=key.pk).expires_at)
    assert_expires_at_the_maximum(UserToken.objects.get(pk=token.pk).expires_at)
    assert UserToken.objects.get(pk=dated.pk).expires_at == kept


@pytest.mark.parametrize("credential", ["api_key", "user_token"])
def test_a_token_row_without_expiry_stops_working_after_the_maximum_lifetime(credential):
    user = make_user("operator")
    token, raw = make_api_key(user) if credential == "api_key" else make_user_token(user)
    type(token).objects.filter(pk=token.pk).update(
        expires_at=None, created_at=timezone.now() - timedelta(days=MAX_DAYS + 1)
    )
    assert bearer(raw).get("/api/me", REMOTE_ADDR="127.0.0.1").status_code == 401
    type(token).objects.filter(pk=token.pk).update(created_at=timezone.now() - timedelta(days=MAX_DAYS - 1))
    assert bearer(raw).get("/api/me", REMOTE_ADDR="127.0.0.1").status_code == 200
