"""Nobody grants more than they hold: tokens, keys, roles and group mappings, by API and admin.

Each attack is made by a custom role holding one managing permission, as an attacker who was
given that role would: through the HTTP API where it exists, and through the Django admin.
"""

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import ApiKey, AuditEvent, GroupRoleMapping, Role, User, UserToken
from accounts.roles import BUILTIN_ROLES, Perm
from connections.models import ConnectionGroup
from tests.accounts.test_admin import user_change_form
from tests.factories import (
    browser_with,
    make_address_book_folder,
    make_api_key,
    make_connection,
    make_role,
    make_user,
)

pytestmark = pytest.mark.django_db

VIEWER = [Perm.ADDRESSBOOK_VIEW]


def error_of(response):
    return response.json()["error"]


def admin_messages(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- tokens.manage_any -------------------------------------------------------------------------


def test_token_manager_cannot_mint_a_token_for_an_admin_via_api():
    victim = make_user("admin")
    client = browser_with(Perm.TOKENS_MANAGE_ANY)
    response = client.post(
        "/api/admin/user-tokens", {"email": victim.email, "name": "takeover"}, content_type="application/json"
    )
    assert response.status_code == 403 and "do not hold" in error_of(response)
    assert not UserToken.objects.filter(user=victim).exists()


def test_token_manager_cannot_mint_a_token_capped_above_own_permissions_via_api():
    target = make_user("poweruser")
    client = browser_with(Perm.TOKENS_MANAGE_ANY, *VIEWER)
    response = client.post(
        "/api/admin/user-tokens",
        {"email": target.email, "name": "ci", "max_role": "operator"},
        content_type="application/json",
    )
    assert response.status_code == 403 and "sessions.connect" in error_of(response)
    assert not UserToken.objects.exists()


def test_token_manager_mints_a_token_within_own_permissions_via_api():
    target = make_user("poweruser")
    client = browser_with(Perm.TOKENS_MANAGE_ANY, *VIEWER)
    response = client.post(
        "/api/admin/user-tokens",
        {"email": target.email, "name": "ci", "max_role": "viewer"},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert UserToken.objects.get(user=target).max_role_id == "viewer"


def test_token_manager_cannot_create_an_api_key_for_an_admin_in_django_admin():
    victim = make_user("admin")
    client = browser_with(Perm.ADMIN_SITE, Perm.TOKENS_MANAGE_ANY)
    response = client.post(reverse("admin:accounts_apikey_add"), {"name": "takeover", "user": victim.pk}, follow=True)
    assert any("do not hold" in m for m in admin_messages(response))
    assert not ApiKey.objects.filter(name="takeover").exists()
    assert not AuditEvent.objects.filter(action="api_key.created").exists()


def test_token_manager_cannot_extend_an_admins_api_key_in_django_admin():
    key, _ = make_api_key(make_user("admin"))
    before = key.expires_at
    client = browser_with(Perm.ADMIN_SITE, Perm.TOKENS_MANAGE_ANY)
    response = client.post(
        reverse("admin:accounts_apikey_change", args=[quote(key.pk)]),
        {"expires_at_0": "", "expires_at_1": "", "allowed_ips": ""},
        follow=True,
    )
    assert any("do not hold" in m for m in admin_messages(response))
    assert ApiKey.objects.get(pk=key.pk).expires_at == before


def test_token_manager_creates_an_api_key_within_own_permissions_in_django_admin():
    target = make_user("viewer")
    client = browser_with(Perm.ADMIN_SITE, Perm.TOKENS_MANAGE_ANY, *VIEWER)
    response = client.post(reverse("admin:accounts_apikey_add"), {"name": "reader", "user": target.pk})
    assert response.status_code == 200 and "reader:" in response.content.decode()
    assert ApiKey.objects.get(name="reader").user == target


# --- users.manage ------------------------------------------------------------------------------


def test_user_manager_cannot_make_self_admin_via_api():
    client = browser_with(Perm.USERS_MANAGE)
    response = client.put(f"/api/users/{client.user.email}/role", {"role": "admin"}, content_type="application/json")
    assert response.status_code == 403 and "do not hold" in error_of(response)
    assert User.objects.get(pk=client.user.pk).role_id == "custom"


def test_user_manager_cannot_give_a_role_with_permissions_they_lack_via_api():
    target = make_user("viewer")
    client = browser_with(Perm.USERS_MANAGE, *VIEWER)
    response = client.put(f"/api/users/{target.email}/role", {"role": "operator"}, content_type="application/json")
    assert response.status_code == 403 and "sessions.connect" in error_of(response)
    assert User.objects.get(pk=target.pk).role_id == "viewer"


def test_user_manager_cannot_demote_someone_holding_more_via_api():
    target = make_user("operator")
    client = browser_with(Perm.USERS_MANAGE, *VIEWER)
    response = client.put(f"/api/users/{target.email}/role", {"role": "viewer"}, content_type="application/json")
    assert response.status_code == 403 and "holds permissions you do not" in error_of(response)
    assert User.objects.get(pk=target.pk).role_id == "operator"


def test_user_manager_gives_a_role_within_own_permissions_via_api():
    target = make_user("operator")
    client = browser_with(Perm.USERS_MANAGE, *BUILTIN_ROLES["operator"])
    response = client.put(f"/api/users/{target.email}/role", {"role": "viewer"}, content_type="application/json")
    assert response.status_code == 200
    assert User.objects.get(pk=target.pk).role_id == "viewer"


def test_user_manager_cannot_make_self_admin_in_django_admin():
    client = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE)
    url = reverse("admin:accounts_user_change", args=[quote(client.user.pk)])
    response = client.post(url, user_change_form(client.user, role="admin", display_name="Boss"), follow=True)
    assert any("do not hold" in m for m in admin_messages(response))
    me = User.objects.get(pk=client.user.pk)
    assert (me.role_id, me.display_name) == ("custom", "")  # nothing of the request was saved


def test_user_manager_cannot_create_an_admin_in_django_admin():
    client = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE)
    password = "a-long-password-123"
    form = {"username": "sleeper", "email": "sleeper@example.com", "display_name": "", "role": "admin"}
    form.update({"password1": password, "password2": password, "usable_password": "true"})
    response = client.post(reverse("admin:accounts_user_add"), form, follow=True)
    assert any("do not hold" in m for m in admin_messages(response))
    assert not User.objects.filter(username="sleeper").exists()


def test_user_manager_cannot_reset_an_admins_password_in_django_admin():
    victim = make_user("admin")
    client = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE)
    url = reverse("admin:auth_user_password_change", args=[quote(victim.pk)])
    password = "attacker-chosen-123"
    response = client.post(url, {"password1": password, "password2": password, "usable_password": "true"})
    assert response.status_code == 403
    victim.refresh_from_db()
    assert not victim.check_password(password)


def test_user_manager_cannot_create_a_role_with_more_permissions_in_django_admin():
    client = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE)
    response = client.post(
        reverse("admin:accounts_role_add"),
        {"name": "sneaky", "description": "", "permissions": [Perm.USERS_MANAGE, Perm.CONNECTIONS_REVEAL]},
        follow=True,
    )
    assert any("connections.reveal_credentials" in m for m in admin_messages(response))
    assert not Role.objects.filter(name="sneaky").exists()


def test_user_manager_cannot_widen_own_role_in_django_admin():
    client = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE)
    response = client.post(
        reverse("admin:accounts_role_change", args=[quote("custom")]),
        {"description": "", "permissions": [Perm.ADMIN_SITE, Perm.USERS_MANAGE, Perm.SSHSERVER_MANAGE]},
        follow=True,
    )
    assert any("sshserver.manage" in m for m in admin_messages(response))
    assert Role.objects.get(name="custom").permission_set == {Perm.ADMIN_SITE, Perm.USERS_MANAGE}


def test_user_manager_creates_a_role_within_own_permissions_in_django_admin():
    client = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE, Perm.AUDIT_VIEW)
    response = client.post(
        reverse("admin:accounts_role_add"), {"name": "log-readers", "description": "", "permissions": [Perm.AUDIT_VIEW]}
    )
    assert response.status_code == 302
    assert Role.objects.get(name="log-readers").permission_set == {Perm.AUDIT_VIEW}


@pytest.fixture
def dba_folder():
    """An address-book folder of root credentials, opened to the group "dba" only."""
    folder = make_address_book_folder("databases", groups=["dba"])
    make_connection(None, "db-root", group=folder, username="root", password="root-pw", shared=True)
    return folder


def test_user_manager_cannot_join_a_group_that_opens_address_book_folders(dba_folder):
    client = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE, Perm.SESSIONS_CONNECT, *VIEWER)
    dba = Group.objects.get(name="dba")
    for user in (client.user, make_user("viewer")):
        url = reverse("admin:accounts_user_change", args=[quote(user.pk)])
        response = client.post(url, user_change_form(user, groups=[dba.pk], display_name="Joined"), follow=True)
        assert any("groups you are not in: dba" in m for m in admin_messages(response))
        user.refresh_from_db()
        assert not user.groups.exists() and user.display_name == ""  # nothing of the request was saved
    assert not ConnectionGroup.objects.address_book_visible_to(client.user).exists()


def test_group_member_or_address_book_manager_adds_members(dba_folder):
    dba = Group.objects.get(name="dba")
    member = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE, *VIEWER, name="member")
    member.user.groups.add(dba)
    manager = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE, Perm.ADDRESSBOOK_MANAGE, *VIEWER, name="manager")
    for client in (member, manager):
        user = make_user("viewer")
        url = reverse("admin:accounts_user_change", args=[quote(user.pk)])
        assert client.post(url, user_change_form(user, groups=[dba.pk])).status_code == 302
        assert list(ConnectionGroup.objects.address_book_visible_to(user)) == [dba_folder]


def test_user_manager_cannot_rename_a_group_to_what_single_sign_on_matches(dba_folder):
    client = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE)
    dba = Group.objects.get(name="dba")
    response = client.post(reverse("admin:auth_group_change", args=[quote(dba.pk)]), {"name": "interns"})
    assert response.status_code == 403
    assert Group.objects.get(pk=dba.pk).name == "dba"


# --- group_mappings.manage ---------------------------------------------------------------------


def test_mapping_manager_cannot_map_a_group_to_admin_via_api():
    client = browser_with(Perm.GROUP_MAPPINGS_MANAGE)
    response = client.post(
        "/api/admin/group-mappings", {"oidc_group": "my-team", "role": "admin"}, content_type="application/json"
    )
    assert response.status_code == 403 and "do not hold" in error_of(response)
    assert not GroupRoleMapping.objects.exists()


def test_mapping_manager_cannot_raise_a_mapping_to_admin_via_api():
    mapping = GroupRoleMapping.objects.create(oidc_group="my-team", role_id="viewer")
    client = browser_with(Perm.GROUP_MAPPINGS_MANAGE, *VIEWER)
    response = client.put(
        f"/api/admin/group-mappings/{mapping.pk}", {"oidc_group": "my-team", "role": "admin"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert GroupRoleMapping.objects.get(pk=mapping.pk).role_id == "viewer"


def test_mapping_manager_cannot_map_a_group_to_admin_in_django_admin():
    client = browser_with(Perm.ADMIN_SITE, Perm.GROUP_MAPPINGS_MANAGE)
    response = client.post(
        reverse("admin:accounts_grouprolemapping_add"), {"oidc_group": "my-team", "role": "admin"}, follow=True
    )
    assert any("do not hold" in m for m in admin_messages(response))
    assert not GroupRoleMapping.objects.exists()


def test_mapping_manager_maps_a_group_within_own_permissions_via_api():
    client = browser_with(Perm.GROUP_MAPPINGS_MANAGE, *VIEWER)
    response = client.post(
        "/api/admin/group-mappings", {"oidc_group": "readers", "role": "viewer"}, content_type="application/json"
    )
    assert response.status_code == 201


# --- admins make admins ------------------------------------------------------------------------


def test_admin_makes_an_admin_via_api(admin_client):
    target = make_user("operator")
    response = admin_client.put(f"/api/users/{target.email}/role", {"role": "admin"}, format="json")
    assert response.status_code == 200
    assert User.objects.get(pk=target.pk).role_id == "admin"


def test_admin_with_a_capped_token_cannot_grant_beyond_the_cap():
    from tests.conftest import bearer
    from tests.factories import make_user_token

    admin = make_user("admin")
    make_role("userops", [Perm.USERS_MANAGE, *VIEWER])
    _, token = make_user_token(admin, max_role=Role.objects.get(name="userops"))
    target = make_user("operator")
    response = bearer(token).put(f"/api/users/{target.email}/role", {"role": "admin"}, format="json")
    assert response.status_code == 403 and "do not hold" in response.json()["error"]
    assert User.objects.get(pk=target.pk).role_id == "operator"
