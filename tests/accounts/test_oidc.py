"""Single sign-on pieces that need no provider: claims to user, state checks, status flags.
The whole flow against a real provider is in tests/browser/test_sso.py."""

import pytest
from django.test import Client, RequestFactory

from accounts.choices import AuditAction, AuthSource
from accounts.models import AuditEvent, GroupRoleMapping, User
from accounts.oidc import Backend
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend():
    instance = Backend()
    instance.request = RequestFactory().get("/auth/callback", REMOTE_ADDR="127.0.0.7")
    return instance


def claims(**overrides):
    return {"sub": "sub-1", "email": "Alice@Example.com", "email_verified": True, "name": "Alice A",
            "preferred_username": "alice", "groups": ["engineering"], **overrides}


def sign_on(backend, data):
    """What mozilla-django-oidc's get_or_create_user does with verified userinfo claims."""
    assert backend.verify_claims(data)
    users = backend.filter_users_by_claims(data)
    return backend.update_user(users[0], data) if users else backend.create_user(data)


def test_first_sign_on_creates_the_user_with_the_mapped_role(backend):
    GroupRoleMapping.objects.create(oidc_group="engineering", role_id="poweruser")
    user = sign_on(backend, claims())
    assert (user.username, user.email, user.display_name, user.role_id) == ("alice", "alice@example.com", "Alice A", "poweruser")
    assert user.auth_source == AuthSource.OIDC and user.oidc_subject == "sub-1" and not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == ["engineering"]


def test_every_sign_on_remaps_role_and_groups(backend):
    GroupRoleMapping.objects.create(oidc_group="engineering", role_id="poweruser")
    GroupRoleMapping.objects.create(oidc_group="ops", role_id="operator")
    user = sign_on(backend, claims())
    user = sign_on(backend, claims(groups=["ops"], name="Alice B", email="alice@new.example.com"))
    assert User.objects.count() == 1
    assert (user.role_id, user.display_name, user.email) == ("operator", "Alice B", "alice@new.example.com")
    assert list(user.groups.values_list("name", flat=True)) == ["ops"]
    event = AuditEvent.objects.filter(action=AuditAction.USER_ROLE_CHANGED).latest("id")
    assert "poweruser -> operator" in event.details and event.ip_addr == "127.0.0.7"


def test_unmapped_user_gets_the_default_role(backend, settings):
    settings.OIDC_DEFAULT_ROLE = "operator"
    assert sign_on(backend, claims(groups=[])).role_id == "operator"


def test_unmapped_user_is_refused_without_a_default(backend, settings):
    settings.OIDC_DEFAULT_ROLE = "none"
    assert backend.verify_claims(claims(groups=["unknown"])) is False
    assert AuditEvent.objects.filter(action=AuditAction.USER_LOGIN_FAILED, user_email="alice@example.com").exists()


@pytest.mark.parametrize("missing", ["sub", "email"])
def test_claims_without_identity_are_refused(backend, missing):
    assert backend.verify_claims({k: v for k, v in claims().items() if k != missing}) is False


def test_existing_local_account_is_linked_by_email_once(backend):
    local = make_user("admin", username="alice", email="alice@example.com")
    user = sign_on(backend, claims())
    assert user.pk == local.pk and user.oidc_subject == "sub-1"
    # Another provider identity with the same email does not take the account over.
    assert not backend.filter_users_by_claims(claims(sub="sub-2")).exists()


@pytest.mark.parametrize("verified", [False, "false", None])
def test_unverified_email_does_not_link_an_existing_account(backend, verified):
    local = make_user("admin", username="alice", email="alice@example.com")
    data = {k: v for k, v in claims(email_verified=verified).items() if verified is not None or k != "email_verified"}
    assert sign_on(backend, data) is None
    local.refresh_from_db()
    assert local.oidc_subject is None and local.auth_source == AuthSource.LOCAL
    assert User.objects.count() == 1  # and no second account for the same address
    refusal = AuditEvent.objects.get(action=AuditAction.USER_LOGIN_FAILED)
    assert refusal.user_email == "alice@example.com" and "not linked" in refusal.details


def test_linking_by_email_can_be_turned_off(backend, settings):
    settings.OIDC_LINK_BY_EMAIL = False
    local = make_user("operator", username="alice", email="alice@example.com")
    assert sign_on(backend, claims()) is None
    local.refresh_from_db()
    assert local.oidc_subject is None and User.objects.count() == 1


def test_unverified_email_of_nobody_still_creates_the_user(backend):
    assert sign_on(backend, claims(email_verified=False)).email == "alice@example.com"


def test_sign_on_does_not_take_another_accounts_email(backend):
    user = sign_on(backend, claims())
    make_user("operator", username="bob", email="bob@example.com")
    assert sign_on(backend, claims(email="bob@example.com")).email == user.email


def test_last_admin_keeps_admin_when_their_groups_map_to_viewer(backend):
    GroupRoleMapping.objects.create(oidc_group="admins", role_id="admin")
    GroupRoleMapping.objects.create(oidc_group="staff", role_id="viewer")
    admin = sign_on(backend, claims(groups=["admins"]))
    assert sign_on(backend, claims(groups=["staff"])).role_id == "admin"
    admin.refresh_from_db()
    assert admin.role_id == "admin"
    kept = AuditEvent.objects.filter(action=AuditAction.USER_ROLE_CHANGED).latest("id")
    assert "last active admin" in kept.details and kept.user_email == "alice@example.com"


def test_sso_demotes_an_admin_while_another_admin_remains(backend):
    GroupRoleMapping.objects.create(oidc_group="admins", role_id="admin")
    GroupRoleMapping.objects.create(oidc_group="staff", role_id="viewer")
    make_user("admin")
    sign_on(backend, claims(groups=["admins"]))
    assert sign_on(backend, claims(groups=["staff"])).role_id == "viewer"


def test_username_clash_gets_a_suffix(backend):
    make_user("viewer", username="alice", email="other@example.com")
    assert sign_on(backend, claims()).username == "alice-2"


def test_groups_claim_may_be_a_single_string(backend, settings):
    settings.OIDC_GROUPS_CLAIM = "roles"
    GroupRoleMapping.objects.create(oidc_group="admins", role_id="admin")
    assert sign_on(backend, claims(roles="admins")).role_id == "admin"


def test_disabled_session_user_is_anonymous_for_the_backend():
    user = make_user("operator", active=False)
    assert Backend().get_user(user.pk) is None


def test_local_login_is_not_handled_by_the_sso_backend(settings):
    settings.OIDC_ENABLED = True
    assert Backend().authenticate(RequestFactory().get("/"), username="x", password="y") is None


def test_sso_routes_do_not_exist_when_sso_is_off(client):
    assert client.get("/auth/login").status_code == 404
    assert client.get("/auth/callback?code=a&state=b").status_code == 404


@pytest.fixture
def sso_on(settings):
    settings.OIDC_ENABLED = True
    settings.OIDC_ISSUER = "http://127.0.0.1:9"
    settings.OIDC_RP_CLIENT_ID = "pam"


def test_callback_without_a_started_login_fails_cleanly(sso_on):
    response = Client().get("/auth/callback?code=abc&state=forged")
    assert response.status_code == 302 and response["Location"] == "/login?sso=failed"


def test_callback_with_a_forged_state_is_refused_and_audited(sso_on):
    client = Client()
    session = client.session
    session["oidc_states"] = {"the-real-state": {"nonce": "n", "code_verifier": "v", "added_on": 0}}
    session.save()
    client.cookies["sessionid"] = session.session_key
    response = client.get("/auth/callback?code=abc&state=forged")
    assert response.status_code == 400
    assert AuditEvent.objects.filter(action=AuditAction.USER_LOGIN_FAILED, details__contains="state").exists()


def test_unreachable_provider_is_a_clear_503(sso_on):
    response = Client().get("/auth/login")
    assert response.status_code == 503 and "cannot be reached" in response.content.decode()


def test_auth_status_reports_sso(sso_on, client):
    assert client.get("/api/auth/status").json()["oidc_enabled"] is True
