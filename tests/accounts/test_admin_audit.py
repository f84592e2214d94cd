"""Changes made in Django admin are audited like API changes: each one writes its audit row."""

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, GroupRoleMapping, LoginSession, Role
from accounts.roles import Perm
from connections.models import ConnectionTag, Share
from recordings.models import Recording
from sessions.models import Session
from targets.models import KnownHost
from tests.accounts.test_admin import user_change_form
from tests.factories import make_api_key, make_connection, make_folder, make_role, make_user, make_user_token

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-password-123"


@pytest.fixture
def browser():
    client = Client()
    client.user = make_user("admin")
    client.force_login(client.user)
    return client


def audited(action, name_part="", by=None):
    """The audit rows of ``action`` whose object name contains ``name_part``."""
    rows = AuditEvent.objects.filter(action=action, object_name__contains=name_part)
    return rows.filter(user=by) if by is not None else rows


def posted(response):
    assert response.status_code == 302, response.content.decode()[:2000]


def delete(browser, model, pk):
    posted(browser.post(reverse(f"admin:{model}_delete", args=[quote(pk)]), {"post": "yes"}))


def run_action(browser, model, action, *pks):
    posted(browser.post(reverse(f"admin:{model}_changelist"), {"action": action, "_selected_action": list(pks)}))


# --- users, roles, groups, logins --------------------------------------------------------------


def test_user_added_in_admin_is_audited(browser):
    form = {"username": "newbie", "email": "newbie@example.com", "display_name": "", "role": "operator"}
    posted(browser.post(reverse("admin:accounts_user_add"), {**form, "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"}))
    row = audited("user.created", "newbie@example.com", by=browser.user).get()
    assert row.details == "role operator" and PASSWORD not in row.details


def test_user_profile_change_in_admin_is_audited(browser):
    target = make_user("viewer")
    posted(browser.post(reverse("admin:accounts_user_change", args=[quote(target.pk)]), user_change_form(target, display_name="Renamed")))
    assert "Display name" in audited("admin.changed", target.username, by=browser.user).get().details


def test_password_set_in_admin_is_audited(browser):
    target = make_user("viewer")
    url = reverse("admin:auth_user_password_change", args=[quote(target.pk)])
    posted(browser.post(url, {"password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"}))
    row = audited("admin.changed", target.username, by=browser.user).get()
    assert "password" in row.details.lower() and PASSWORD not in row.details


def test_user_role_change_and_deletion_in_admin_are_audited(browser):
    target = make_user("viewer")
    posted(browser.post(reverse("admin:accounts_user_change", args=[quote(target.pk)]), user_change_form(target, role="operator")))
    assert audited("user.role_changed", target.email, by=browser.user).get().details == "viewer -> operator"
    delete(browser, "accounts_user", target.pk)
    assert audited("user.deleted", target.email, by=browser.user).exists()


def test_users_disabled_by_admin_action_are_audited(browser):
    target = make_user("operator")
    run_action(browser, "accounts_user", "disable_users", target.pk)
    assert audited("user.disabled", target.email, by=browser.user).exists()


def test_role_saved_and_deleted_in_admin_are_audited(browser):
    posted(browser.post(reverse("admin:accounts_role_add"), {"name": "readers", "description": "", "permissions": [Perm.AUDIT_VIEW]}))
    assert audited("role.saved", "readers", by=browser.user).get().details == Perm.AUDIT_VIEW
    delete(browser, "accounts_role", "readers")
    assert audited("role.deleted", "readers", by=browser.user).exists()


def test_group_changes_in_admin_are_audited(browser):
    posted(browser.post(reverse("admin:auth_group_add"), {"name": "ops"}))
    assert audited("admin.created", "ops", by=browser.user).get().object_type == "group"
    group = Group.objects.get(name="ops")
    posted(browser.post(reverse("admin:auth_group_changelist"), {"action": "delete_selected", "_selected_action": [group.pk], "post": "yes"}))
    assert audited("admin.deleted", "ops", by=browser.user).exists() and not Group.objects.exists()


def test_login_ended_in_admin_is_audited(browser):
    target = make_user("operator")
    Client().force_login(target)
    login = LoginSession.objects.get(user=target)
    delete(browser, "accounts_loginsession", login.pk)
    assert audited("user.force_logout", target.email, by=browser.user).exists()
    assert not LoginSession.objects.filter(user=target).exists()


def test_group_mapping_changes_in_admin_are_audited(browser):
    posted(browser.post(reverse("admin:accounts_grouprolemapping_add"), {"oidc_group": "ops", "role": "operator"}))
    mapping = GroupRoleMapping.objects.get(oidc_group="ops")
    url = reverse("admin:accounts_grouprolemapping_change", args=[quote(mapping.pk)])
    posted(browser.post(url, {"oidc_group": "ops", "role": "viewer"}))
    delete(browser, "accounts_grouprolemapping", mapping.pk)
    details = list(audited("group_mapping.changed", "ops", by=browser.user).order_by("id").values_list("details", flat=True))
    assert details == ["created: ops -> operator", "changed: ops -> viewer", "deleted: ops -> viewer"]


# --- API keys and tokens -----------------------------------------------------------------------


def test_api_key_changes_in_admin_are_audited(browser):
    owner = make_user("operator")
    response = browser.post(reverse("admin:accounts_apikey_add"), {"name": "job", "user": owner.pk})
    assert response.status_code == 200
    assert audited("api_key.created", "job").get().details == f"created by {browser.user.email}"
    key = owner.api_keys.get()
    posted(browser.post(reverse("admin:accounts_apikey_change", args=[quote(key.pk)]), {"expires_at_0": "", "expires_at_1": "", "allowed_ips": "10.0.0.0/8"}))
    assert "10.0.0.0/8" in audited("api_key.changed", "job").get().details
    run_action(browser, "accounts_apikey", "revoke_keys", key.pk)
    assert audited("api_key.revoked", "job").exists()


def test_token_revoked_in_admin_is_audited(browser):
    token, _ = make_user_token(make_user("poweruser"), name="laptop")
    run_action(browser, "accounts_usertoken", "revoke_tokens", token.pk)
    assert audited("token.revoked", "laptop").get().details == f"revoked by {browser.user.email}"


# --- connections, host keys, sessions, recordings ----------------------------------------------


def test_jump_host_added_to_a_connection_in_admin_is_audited(browser):
    from tests.connections.test_admin import _form

    conn = make_connection(make_user("poweruser"), "db")
    hop = {"jump_hops-TOTAL_FORMS": 1, "jump_hops-0-position": 0, "jump_hops-0-host": "127.0.0.2", "jump_hops-0-port": 22}
    hop.update({"jump_hops-0-username": "j", "jump_hops-0-password": "hop-secret", "jump_hops-0-private_key": ""})
    posted(browser.post(reverse("admin:connections_connection_change", args=[quote(conn.pk)]), _form(conn, **hop)))
    row = audited("connection.updated", conn.pk, by=browser.user).get()
    assert "jump" in row.details.lower() and "hop-secret" not in row.details


def test_folder_share_and_tag_changes_in_admin_are_audited(browser):
    owner = make_user("poweruser")
    conn = make_connection(owner, "web", group=make_folder(owner, "team"), tags=["prod"])
    posted(browser.post(reverse("admin:connections_share_add"), {"connection": conn.pk, "role": "operator"}))
    assert audited("admin.created", "web", by=browser.user).get().object_type == "share"
    assert Share.objects.filter(connection=conn).exists()
    delete(browser, "connections_connectiontag", ConnectionTag.objects.get(connection=conn).pk)
    assert audited("admin.deleted", "prod", by=browser.user).get().object_type == "connectiontag"
    delete(browser, "connections_connectiongroup", conn.group_id)
    assert audited("admin.deleted", "team", by=browser.user).get().object_type == "connectiongroup"


def test_host_key_pin_cannot_be_edited_in_admin_and_its_deletion_is_audited(browser):
    known = KnownHost.objects.create(
        route="r" * 64, host="db", address="127.0.0.1", port=2200, key_type="ssh-ed25519", public_key="AAAA",
        fingerprint="SHA256:old",
    )
    form = {"host": "127.0.0.1", "port": 2200, "key_type": "ssh-ed25519", "public_key": "BBBB", "fingerprint": "SHA256:new"}
    browser.post(reverse("admin:targets_knownhost_change", args=[quote(known.pk)]), form)
    known.refresh_from_db()
    assert (known.public_key, known.fingerprint) == ("AAAA", "SHA256:old")  # only a sighting can replace a pin
    delete(browser, "targets_knownhost", known.pk)
    assert audited("admin.deleted", "127.0.0.1:2200", by=browser.user).exists()


def test_session_terminated_in_admin_is_audited(browser):
    session = Session.objects.create(owner=make_user("operator"), session_type="ssh", host="10.0.0.1", port=22, status="active")
    run_action(browser, "pam_sessions_session", "terminate", session.pk)
    assert audited("session.terminated", str(session.pk), by=browser.user).exists()


def test_recording_deleted_in_admin_goes_through_the_audited_service(browser):
    recording = Recording.objects.create(name="2026/alice.cast")
    delete(browser, "recordings_recording", recording.pk)
    assert not Recording.objects.filter(pk=recording.pk).exists()
    assert audited("recording.deleted", "2026/alice.cast", by=browser.user).get().details == "in the admin site"


def test_recording_rows_cannot_be_changed_in_admin_even_by_an_admin(browser):
    recording = Recording.objects.create(name="2026/bob.cast", size=10)
    url = reverse("admin:recordings_recording_change", args=[recording.pk])
    browser.post(url, {"name": "2026/other.cast", "size": 99, "format": "asciicast-v2"})
    recording.refresh_from_db()
    assert (recording.name, recording.size) == ("2026/bob.cast", 10)
    assert browser.get(reverse("admin:recordings_recording_add")).status_code == 403


def test_refused_admin_change_leaves_no_audit_row_and_nothing_saved():
    make_role("keyops", [Perm.ADMIN_SITE, Perm.TOKENS_MANAGE_ANY])
    client = Client()
    client.force_login(make_user("keyops"))
    victim = make_user("admin")
    key, _ = make_api_key(victim)
    before = AuditEvent.objects.count()
    url = reverse("admin:accounts_apikey_change", args=[quote(key.pk)])
    client.post(url, {"expires_at_0": "", "expires_at_1": "", "allowed_ips": "0.0.0.0/0"})
    key.refresh_from_db()
    assert key.allowed_ips == [] and AuditEvent.objects.count() == before
    assert Role.objects.filter(name="keyops").exists()
