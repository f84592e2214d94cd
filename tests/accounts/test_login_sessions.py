"""Browser logins are stored by digest: reading the session table gives no usable cookie."""

import hashlib
import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import LoginSession
from accounts.services.users import end_user_logins
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def signed_in(user):
    client = Client()
    assert client.post("/login", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def test_session_table_holds_a_digest_of_the_cookie_not_the_cookie():
    user = make_user("operator")
    client = signed_in(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    row = LoginSession.objects.get(user=user)
    assert row.session_key != cookie
    assert row.session_key == hashlib.sha256(cookie.encode()).hexdigest()
    assert client.get("/api/me").json()["email"] == user.email


def test_a_session_key_read_from_the_database_does_not_sign_in():
    user = make_user("admin")
    signed_in(user)
    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = LoginSession.objects.get(user=user).session_key
    assert thief.get("/api/me").status_code in (401, 403)


def test_ending_a_users_logins_signs_every_browser_out():
    user = make_user("operator")
    browsers = [signed_in(user), signed_in(user)]
    assert end_user_logins(user=user, actor=None) == 2
    assert all(browser.get("/api/me").status_code in (401, 403) for browser in browsers)


def test_logout_removes_the_stored_login():
    user = make_user("operator")
    client = signed_in(user)
    assert client.post("/logout").status_code == 302
    assert not LoginSession.objects.filter(user=user).exists()


def test_logins_made_before_the_upgrade_are_hashed_in_place_and_keep_working():
    user = make_user("operator")
    cookie = "k" * 32
    data = {"_auth_user_id": str(user.pk), "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
            "_auth_user_hash": user.get_session_auth_hash()}
    encoded = LoginSession.get_session_store_class()().encode(data)
    LoginSession.objects.create(
        session_key=cookie, session_data=encoded, expire_date=timezone.now() + timedelta(hours=1), user=user
    )
    migration = importlib.import_module("accounts.migrations.0003_login_session_key_digest")
    migration.hash_existing_keys(apps, None)
    stored = list(LoginSession.objects.values_list("session_key", flat=True))
    assert stored == [hashlib.sha256(cookie.encode()).hexdigest()]
    browser = Client()
    browser.cookies[settings.SESSION_COOKIE_NAME] = cookie
    assert browser.get("/api/me").json()["email"] == user.email
