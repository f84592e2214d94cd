"""Django admin asks the catalog for each model and action: ``admin.site`` only opens /admin/."""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey, AuditEvent, GroupRoleMapping, LoginSession, Role, User
from accounts.roles import ADMIN_PERMS, Perm
from connections.models import ConnectionTag, JumpHop, Share, Tunnel
from nodes.models import Node
from recordings.models import Recording
from sessions.models import Session, SessionChannel, TransferredFile, Viewer
from targets.models import HostKeySighting, KnownHost
from tests.factories import (
    browser_with,
    make_api_key,
    make_connection,
    make_folder,
    make_role,
    make_user,
    make_user_token,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_of_each():
    """One stored row of every model the admin site shows."""
    owner = make_user("poweruser")
    connection = make_connection(owner, "web", group=make_folder(owner), tags=["t"])
    session = Session.objects.create(owner=owner, session_type="ssh", host="10.0.0.1", port=22, status="ended")
    node = Node.objects.create(id="node-1", kind="web", hostname="h", pid=1)
    known = KnownHost.objects.create(
        route="r" * 64, host="10.0.0.1", address="10.0.0.1", port=22, key_type="ssh-ed25519", public_key="AAAA",
        fingerprint="SHA256:x",
    )
    rows = [
        owner,
        make_role("spare", [Perm.AUDIT_VIEW]),
        Group.objects.create(name="ops"),
        make_api_key(owner)[0],
        make_user_token(owner)[0],
        AuditEvent.objects.create(action="user.login", user_email=owner.email),
        GroupRoleMapping.objects.create(oidc_group="ops", role_id="operator"),
        connection,
        connection.group,
        ConnectionTag.objects.get(connection=connection),
        JumpHop.objects.create(connection=connection, position=0, host="10.0.0.5", username="j"),
        Share.objects.create(connection=connection, role_id="operator"),
        Tunnel.objects.create(connection=connection, local_port=40000, remote_host="127.0.0.1", remote_port=22),
        session,
        node,
        Viewer.objects.create(session=session, channel_name="c1", user=owner, access="viewer", node=node.id),
        known,
        HostKeySighting.objects.create(known_host=known, key_type="ssh-ed25519", public_key="BBBB", fingerprint="SHA256:y"),
        Recording.objects.create(name="r.cast", session=session),
    ]
    channel = SessionChannel.objects.create(session=session, kind="shell")
    rows += [channel, TransferredFile.objects.create(channel=channel, name="f", path="/tmp/f", direction="download")]
    owner_client = Client()
    owner_client.force_login(owner)
    rows.append(LoginSession.objects.get(user=owner))
    return {type(row): row for row in rows}


def admin_urls(rows):
    for model in admin.site._registry:
        opts = model._meta
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        pk = rows[model].pk
        yield from (
            reverse(f"{prefix}_changelist"),
            reverse(f"{prefix}_add"),
            reverse(f"{prefix}_change", args=[quote(pk)]),
            reverse(f"{prefix}_delete", args=[quote(pk)]),
            reverse(f"{prefix}_history", args=[quote(pk)]),
        )


def test_every_admin_model_and_inline_has_catalog_permissions():
    models = set(admin.site._registry)
    for model_admin in admin.site._registry.values():
        models.update(inline.model for inline in model_admin.inlines)
    keys = {f"{m._meta.app_label}.{m._meta.model_name}" for m in models}
    assert keys == set(ADMIN_PERMS)
    for actions in ADMIN_PERMS.values():
        assert "view" in actions
        for required in actions.values():
            assert required and set(required) <= set(Perm)


def test_admin_site_alone_opens_only_the_index(one_of_each):
    client = browser_with(Perm.ADMIN_SITE)
    index = client.get("/admin/")
    assert index.status_code == 200 and "have permission to view or edit anything" in index.content.decode()
    for url in admin_urls(one_of_each):
        assert client.get(url).status_code == 403, url


def test_admin_site_alone_cannot_create_an_api_key_for_admin():
    target = make_user("admin", username="root-admin")
    client = browser_with(Perm.ADMIN_SITE)
    response = client.post(reverse("admin:accounts_apikey_add"), {"name": "takeover", "user": target.pk})
    assert response.status_code == 403
    assert not ApiKey.objects.filter(name="takeover").exists()


def test_admin_site_alone_cannot_change_a_role():
    target = make_user("viewer")
    client = browser_with(Perm.ADMIN_SITE)
    from tests.accounts.test_admin import user_change_form

    response = client.post(reverse("admin:accounts_user_change", args=[quote(target.pk)]), user_change_form(target, role="admin"))
    assert response.status_code == 403
    assert User.objects.get(pk=target.pk).role_id == "viewer"


def test_user_manager_manages_users_but_not_api_keys():
    from tests.accounts.test_admin import user_change_form

    client = browser_with(Perm.ADMIN_SITE, Perm.USERS_MANAGE, Perm.ADDRESSBOOK_VIEW)
    target = make_user("viewer")
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 200
    response = client.post(
        reverse("admin:accounts_user_change", args=[quote(target.pk)]), user_change_form(target, display_name="Renamed")
    )
    assert response.status_code == 302
    assert User.objects.get(pk=target.pk).display_name == "Renamed"
    assert client.get(reverse("admin:accounts_apikey_changelist")).status_code == 403
    response = client.post(reverse("admin:accounts_apikey_add"), {"name": "mine", "user": target.pk})
    assert response.status_code == 403 and not ApiKey.objects.exists()


@pytest.mark.parametrize(
    "perms, url, status",
    [
        ([Perm.AUDIT_VIEW], "admin:accounts_auditevent_changelist", 200),
        ([Perm.AUDIT_VIEW], "admin:accounts_user_changelist", 403),
        ([Perm.AUDIT_VIEW], "admin:pam_sessions_session_changelist", 200),
        ([Perm.TOKENS_MANAGE_ANY], "admin:accounts_apikey_changelist", 200),
        ([Perm.TOKENS_MANAGE_ANY], "admin:accounts_apikey_add", 200),
        ([Perm.TOKENS_MANAGE_ANY], "admin:accounts_usertoken_changelist", 200),
        ([Perm.TOKENS_MANAGE_ANY], "admin:accounts_role_changelist", 403),
        ([Perm.USERS_MANAGE], "admin:accounts_role_add", 200),
        ([Perm.USERS_MANAGE], "admin:auth_group_add", 200),
        ([Perm.USERS_MANAGE], "admin:accounts_grouprolemapping_changelist", 403),
        ([Perm.GROUP_MAPPINGS_MANAGE], "admin:accounts_grouprolemapping_add", 200),
        ([Perm.HOSTKEYS_MANAGE], "admin:targets_knownhost_changelist", 200),
        ([Perm.CONNECTIONS_EDIT_ANY], "admin:targets_knownhost_changelist", 403),
        ([Perm.CONNECTIONS_EDIT_ANY], "admin:connections_connection_changelist", 200),
        # The connection form edits stored credentials directly: it needs the reveal permission.
        ([Perm.CONNECTIONS_CREATE, Perm.CONNECTIONS_EDIT_ANY], "admin:connections_connection_add", 403),
        (
            [Perm.CONNECTIONS_CREATE, Perm.CONNECTIONS_EDIT_ANY, Perm.CONNECTIONS_REVEAL],
            "admin:connections_connection_add",
            200,
        ),
        ([Perm.CONNECTIONS_EDIT_ANY], "admin:connections_connectiongroup_add", 403),
        # Every recording is listed there: only for those who may read every one.
        ([Perm.RECORDINGS_VIEW, Perm.AUDIT_VIEW], "admin:recordings_recording_changelist", 403),
        ([Perm.RECORDINGS_VIEW_ANY], "admin:recordings_recording_changelist", 200),
        ([Perm.RECORDINGS_VIEW_ANY], "admin:recordings_recording_add", 403),
        ([Perm.RECORDINGS_VIEW_ANY], "admin:pam_sessions_sessionchannel_changelist", 200),
        ([Perm.AUDIT_VIEW], "admin:pam_sessions_transferredfile_changelist", 403),
    ],
)
def test_admin_page_needs_its_catalog_permission(perms, url, status):
    client = browser_with(Perm.ADMIN_SITE, *perms)
    assert client.get(reverse(url)).status_code == status


@pytest.mark.parametrize("role, status", [("viewer", 302), ("operator", 302), ("poweruser", 302), ("admin", 200)])
def test_builtin_roles_on_admin_pages(one_of_each, role, status):
    client = Client()
    client.force_login(make_user(role))
    for model in admin.site._registry:
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(url).status_code == status, url


def test_admin_actions_are_offered_only_with_their_permission():
    owner = make_user("operator")
    Session.objects.create(owner=owner, session_type="ssh", host="10.0.0.1", port=22, status="active")
    url = reverse("admin:pam_sessions_session_changelist")
    auditor = browser_with(Perm.ADMIN_SITE, Perm.AUDIT_VIEW)
    assert 'value="terminate"' not in auditor.get(url).content.decode()
    admin_client = Client()
    admin_client.force_login(make_user("admin"))
    assert 'value="terminate"' in admin_client.get(url).content.decode()


def test_role_table_drives_django_permissions():
    user = make_user("admin")
    assert user.has_perm("accounts.add_apikey")
    assert not user.has_perm("accounts.delete_apikey")  # API keys are revoked, never deleted
    assert not user.has_perm("accounts.add_nosuchmodel")
    assert not make_user("poweruser").has_perm("connections.view_connection")
    assert Role.objects.get(name="admin").permission_set >= {Perm.HOSTKEYS_MANAGE}
