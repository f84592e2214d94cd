"""Console pages: who may open which, and what the navigation offers."""

import pytest
from django.test import Client

from accounts.models import AuditEvent
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

PAGES = {"/": "viewer", "/connections": "viewer", "/tokens": "operator", "/users": "admin", "/audit": "admin"}
LADDER = ["viewer", "operator", "poweruser", "admin"]


def signed_in(role):
    client = Client()
    client.force_login(make_user(role))
    return client


@pytest.mark.parametrize("path", PAGES)
def test_pages_require_login(path):
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login?next=")


@pytest.mark.parametrize("role", LADDER)
@pytest.mark.parametrize("path, lowest", PAGES.items())
def test_page_access_by_role(role, path, lowest):
    allowed = LADDER.index(role) >= LADDER.index(lowest)
    assert signed_in(role).get(path).status_code == (200 if allowed else 403)


@pytest.mark.parametrize("role", LADDER)
def test_navigation_shows_only_allowed_pages(role):
    html = signed_in(role).get("/").content.decode()
    for path, lowest in PAGES.items():
        if path == "/":
            continue
        assert (f'href="{path}"' in html) is (LADDER.index(role) >= LADDER.index(lowest))
    assert ('href="/admin/"' in html) is (role == "admin")


def test_login_page_offers_sso_only_when_configured(client, settings):
    assert "single sign-on" not in client.get("/login").content.decode()
    settings.OIDC_ENABLED = True
    assert "Sign in with single sign-on" in client.get("/login").content.decode()


def test_login_logout_round_trip(client):
    user = make_user("operator")
    response = client.post("/login?next=/tokens", {"username": user.username, "password": PASSWORD, "next": "/tokens"})
    assert response.status_code == 302 and response["Location"] == "/tokens"
    assert client.get("/tokens").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/tokens").status_code == 302
    assert AuditEvent.objects.filter(action="user.logout", user=user).exists()


def test_login_refuses_offsite_redirect(client):
    user = make_user("operator")
    response = client.post("/login", {"username": user.username, "password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_audit_page_filters_and_survives_bad_dates():
    client = signed_in("admin")
    make_user("operator", username="target")
    Client().post("/login", {"username": "target", "password": "nope"})
    html = client.get("/audit", {"action": "user.login_failed"}).content.decode()
    assert "user.login_failed" in html and "target" in html
    assert client.get("/audit", {"since": "not-a-date", "page": "999"}).status_code == 200
