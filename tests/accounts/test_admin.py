"""Django admin at /admin/: admins only, every model listed, searchable, and no secret shown."""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey, AuditEvent, User
from tests.factories import make_api_key, make_user, make_user_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser():
    client = Client()
    client.force_login(make_user("admin"))
    return client


def changelist_urls():
    return [reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist") for m in admin.site._registry]


def test_every_project_model_is_registered():
    from django.apps import apps

    ours = {"accounts", "auth"}
    registered = set(admin.site._registry)
    missing = [m for m in apps.get_models() if m._meta.app_label in ours and m not in registered]
    missing = [m for m in missing if m._meta.model_name not in {"permission"}]
    assert missing == []


@pytest.mark.parametrize("role, status", [("viewer", 302), ("operator", 302), ("poweruser", 302), ("admin", 200)])
def test_admin_index_by_role(role, status):
    client = Client()
    client.force_login(make_user(role))
    assert client.get("/admin/").status_code == status


def test_every_changelist_opens_with_search_and_filters(admin_browser):
    make_api_key(make_user("poweruser"))
    make_user_token(make_user("poweruser"))
    for url in changelist_urls():
        response = admin_browser.get(url, {"q": "a"})
        assert response.status_code == 200, url
        assert 'id="searchbar"' in response.content.decode(), f"{url} has no search"


def test_operator_cannot_open_a_changelist():
    client = Client()
    client.force_login(make_user("operator"))
    for url in changelist_urls():
        assert client.get(url).status_code == 302


def test_no_secret_or_digest_on_admin_pages(admin_browser):
    key, key_plain = make_api_key(make_user("poweruser"))
    token, token_plain = make_user_token(make_user("poweruser"))
    pages = [
        reverse("admin:accounts_apikey_change", args=[quote(key.pk)]),
        reverse("admin:accounts_apikey_changelist"),
        reverse("admin:accounts_usertoken_change", args=[quote(token.pk)]),
        reverse("admin:accounts_usertoken_changelist"),
    ]
    for url in pages:
        html = admin_browser.get(url).content.decode()
        for secret in (key_plain.split(":")[1], key.digest, token_plain, token.digest):
            assert secret not in html, url


def test_adding_an_api_key_shows_it_once(admin_browser):
    owner = make_user("operator")
    response = admin_browser.post(
        reverse("admin:accounts_apikey_add"), {"name": "backup-job", "user": owner.pk, "allowed_ips": "127.0.0.1"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    key = ApiKey.objects.get(name="backup-job")
    token = html.split("backup-job:")[1].split("<")[0]
    assert key.allowed_ips == ["127.0.0.1/32"]
    from tests.conftest import bearer

    assert bearer(f"backup-job:{token}").get("/api/me", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert token not in admin_browser.get(reverse("admin:accounts_apikey_change", args=[quote(key.pk)])).content.decode()


def test_admin_add_api_key_rejects_bad_allow_list(admin_browser):
    response = admin_browser.post(
        reverse("admin:accounts_apikey_add"), {"name": "k", "user": make_user().pk, "allowed_ips": "nonsense"}
    )
    assert response.status_code == 200 and "not an IP" in response.content.decode()
    assert not ApiKey.objects.exists()


def user_change_form(user, **changes):
    """The fields the admin's user change form posts, with the user's current values."""
    form = {
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "auth_source": user.auth_source,
        "role": user.role_id,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    if user.is_active:
        form["is_active"] = "on"
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_admin_role_change_goes_through_the_service(admin_browser):
    target = make_user("viewer")
    url = reverse("admin:accounts_user_change", args=[quote(target.pk)])
    response = admin_browser.post(url, user_change_form(target, role="operator"))
    assert response.status_code == 302, response.content.decode()[:2000]
    target.refresh_from_db()
    assert target.role_id == "operator"
    assert AuditEvent.objects.filter(action="user.role_changed", object_name=target.email).exists()


def test_admin_cannot_disable_the_last_admin_through_the_form():
    only = make_user("admin")
    client = Client()
    client.force_login(only)
    url = reverse("admin:accounts_user_change", args=[quote(only.pk)])
    response = client.post(url, user_change_form(only, is_active=None), follow=True)
    assert "cannot disable your own account" in response.content.decode()
    only.refresh_from_db()
    assert only.is_active


def test_builtin_roles_are_read_only(admin_browser):
    response = admin_browser.get(reverse("admin:accounts_role_change", args=[quote("admin")]))
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()


def test_custom_role_created_in_admin(admin_browser):
    response = admin_browser.post(
        reverse("admin:accounts_role_add"),
        {"name": "log-readers", "description": "reads audit", "permissions": ["audit.view", "recordings.view"]},
    )
    assert response.status_code == 302
    from accounts.models import Role

    assert Role.objects.get(name="log-readers").permission_set == {"audit.view", "recordings.view"}
    auditor = make_user("log-readers")
    client = Client()
    client.force_login(auditor)
    assert client.get("/api/admin/token-audit").status_code == 200
    assert client.get("/api/users").status_code == 403


def test_user_admin_add_creates_local_user(admin_browser):
    response = admin_browser.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "newbie",
            "email": "Newbie@Example.com",
            "display_name": "New",
            "role": "operator",
            "password1": "a-long-password-123",
            "password2": "a-long-password-123",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert User.objects.get(username="newbie").email == "newbie@example.com"
