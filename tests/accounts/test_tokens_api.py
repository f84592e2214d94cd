from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.models import AuditEvent, Role, UserToken
from tests.conftest import bearer
from tests.factories import make_api_key, make_user, make_user_token

pytestmark = pytest.mark.django_db


def future(days=30):
    return (timezone.now() + timedelta(days=days)).isoformat()


# --- self-service: /api/me/tokens ----------------------------------------------------------


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 200), ("poweruser", 200), ("admin", 200)])
def test_list_own_tokens_by_role(client_as, role, status):
    assert client_as(role).get("/api/me/tokens").status_code == status


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 201), ("admin", 201)])
def test_create_own_token_by_role(client_as, role, status):
    client = client_as(role)
    response = client.post("/api/me/tokens", {"name": "ci"}, format="json")
    assert response.status_code == status
    assert UserToken.objects.filter(user=client.user).count() == (1 if status == 201 else 0)


def test_anonymous_is_401(api_client):
    response = api_client.get("/api/me/tokens")
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication credentials were not provided."}


def test_create_returns_plaintext_once_with_documented_fields(client_as):
    client = client_as("poweruser")
    response = client.post(
        "/api/me/tokens", {"name": "my-ci-token", "max_role": "operator", "expires_at": future()}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert {"id", "name", "token", "max_role", "expires_at"} <= set(body)
    assert body["token"].startswith("pamu_") and body["max_role"] == "operator"
    listed = client.get("/api/me/tokens").json()
    assert [t["name"] for t in listed] == ["my-ci-token"]
    assert "token" not in listed[0]
    assert body["token"] not in client.get("/api/me/tokens").content.decode()


def test_plaintext_is_not_stored(client_as):
    client = client_as("poweruser")
    plaintext = client.post("/api/me/tokens", {"name": "x"}, format="json").json()["token"]
    secret = plaintext.removeprefix("pamu_")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_usertoken")
        rows = cursor.fetchall()
    dumped = repr(rows)
    assert rows and secret not in dumped and plaintext not in dumped


def test_token_authenticates_and_is_capped(client_as):
    client = client_as("admin")
    plaintext = client.post("/api/me/tokens", {"name": "capped", "max_role": "operator"}, format="json").json()[
        "token"
    ]
    token_client = bearer(plaintext)
    me = token_client.get("/api/me").json()
    assert me["role"] == "operator" and me["auth_type"] == "user_token"
    assert token_client.get("/api/users").status_code == 403  # admin's power is capped away


def test_tokens_cannot_mint_tokens(db):
    user = make_user("poweruser")
    _, plaintext = make_user_token(user)
    response = bearer(plaintext).post("/api/me/tokens", {"name": "child"}, format="json")
    assert response.status_code == 403
    assert "browser session" in response.json()["error"]


def test_api_keys_cannot_mint_personal_tokens(db):
    user = make_user("admin")
    _, key = make_api_key(user)
    response = bearer(key).post("/api/me/tokens", {"name": "child"}, format="json")
    assert response.status_code == 403
    assert not UserToken.objects.exists()


def test_token_listing_via_token_is_allowed(db):
    user = make_user("operator")
    _, plaintext = make_user_token(user, name="automation")
    listed = bearer(plaintext).get("/api/me/tokens").json()
    assert [t["name"] for t in listed] == ["automation"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "x" * 1_000_000}, "name"),
        ({"name": 42}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "bad\x00name"}, "name"),
        ({"name": "ok", "max_role": "emperor"}, "max_role"),
        ({"name": "ok", "max_role": 3}, "max_role"),
        ({"name": "ok", "max_role": "admin"}, "max_role"),
        ({"name": "ok", "expires_at": "yesterday"}, "expires_at"),
        ({"name": "ok", "expires_at": 12345}, "expires_at"),
        ({"name": "ok", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_bad_token_input_is_400_and_saves_nothing(client_as, body, field):
    client = client_as("poweruser")
    response = client.post("/api/me/tokens", body, format="json")
    assert response.status_code == 400, response.content[:300]
    error = response.json()
    assert error["error"] and field in error["fields"]
    assert not UserToken.objects.exists()


def test_malformed_json_is_400_json(client_as):
    client = client_as("poweruser")
    response = client.post("/api/me/tokens", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["error"]
    assert not UserToken.objects.exists()


def test_non_object_body_is_400(client_as):
    response = client_as("poweruser").post("/api/me/tokens", ["name"], format="json")
    assert response.status_code == 400
    assert response.json()["error"]


def test_duplicate_name_is_409_and_saves_nothing(client_as):
    client = client_as("poweruser")
    assert client.post("/api/me/tokens", {"name": "dup"}, format="json").status_code == 201
    response = client.post("/api/me/tokens", {"name": "dup"}, format="json")
    assert response.status_code == 409
    assert "already exists" in response.json()["error"]
    assert UserToken.objects.filter(name="dup").count() == 1


def test_same_name_allowed_for_another_user_and_after_revocation(client_as):
    alice, bob = client_as("poweruser"), client_as("poweruser")
    first = alice.post("/api/me/tokens", {"name": "deploy"}, format="json").json()
    assert bob.post("/api/me/tokens", {"name": "deploy"}, format="json").status_code == 201
    assert alice.delete(f"/api/me/tokens/{first['id']}").status_code == 204
    assert alice.post("/api/me/tokens", {"name": "deploy"}, format="json").status_code == 201


def test_revocation_is_immediate(client_as):
    client = client_as("poweruser")
    created = client.post("/api/me/tokens", {"name": "short"}, format="json").json()
    token_client = bearer(created["token"])
    assert token_client.get("/api/me").status_code == 200
    assert client.delete(f"/api/me/tokens/{created['id']}").status_code == 204
    response = token_client.get("/api/me")
    assert response.status_code == 401
    assert response.json() == {"error": "The token has been revoked."}
    assert client.get("/api/me/tokens").json() == []


def test_operator_cannot_revoke_own_token(client_as):
    client = client_as("operator")
    token, _ = make_user_token(client.user)
    assert client.delete(f"/api/me/tokens/{token.id}").status_code == 403
    assert UserToken.objects.live().filter(pk=token.pk).exists()


def test_cannot_revoke_someone_elses_token(client_as):
    other, _ = make_user_token(make_user("poweruser"))
    response = client_as("poweruser").delete(f"/api/me/tokens/{other.id}")
    assert response.status_code == 404
    assert UserToken.objects.live().filter(pk=other.pk).exists()


@pytest.mark.parametrize("token_id", ["abc", "999999", "1.5"])
def test_revoke_unknown_id_is_404(client_as, token_id):
    assert client_as("poweruser").delete(f"/api/me/tokens/{token_id}").status_code == 404


def test_expired_token_is_refused_and_audited(db):
    user = make_user("operator")
    token, plaintext = make_user_token(user, name="old")
    UserToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(plaintext).get("/api/me", REMOTE_ADDR="127.0.0.9")
    assert response.status_code == 401
    assert response.json()["error"] == "The token has expired."
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_USE_FAILED)
    assert (event.user_email, event.object_name, event.ip_addr) == (user.email, "old", "127.0.0.9")


def test_disabled_users_token_stops_at_once(db):
    user = make_user("poweruser")
    _, plaintext = make_user_token(user)
    client = bearer(plaintext)
    assert client.get("/api/me").status_code == 200
    user.is_active = False
    user.save()
    assert client.get("/api/me").status_code == 401


def test_unknown_token_is_401_and_audited(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer pamu_not-a-real-token")
    assert api_client.get("/api/me").status_code == 401
    assert AuditEvent.objects.filter(action=AuditAction.TOKEN_USE_FAILED, user=None).count() == 1


def test_last_used_is_recorded(db):
    user = make_user("operator")
    token, plaintext = make_user_token(user)
    assert token.last_used_at is None
    bearer(plaintext).get("/api/me")
    token.refresh_from_db()
    assert token.last_used_at is not None


# --- admin: /api/admin/user-tokens ---------------------------------------------------------


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 403), ("admin", 201)])
def test_admin_create_token_by_role(client_as, role, status):
    target = make_user("operator")
    response = client_as(role).post(
        "/api/admin/user-tokens", {"email": target.email, "name": "ops-automation"}, format="json"
    )
    assert response.status_code == status
    assert UserToken.objects.filter(user=target).count() == (1 if status == 201 else 0)


def test_admin_creates_token_for_operator_who_cannot(admin_client):
    operator = make_user("operator")
    response = admin_client.post(
        "/api/admin/user-tokens",
        {"email": operator.email.upper(), "name": "operator-automation", "max_role": "operator", "expires_at": future()},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == operator.email and body["token"].startswith("pamu_")
    assert bearer(body["token"]).get("/api/me").json()["email"] == operator.email
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_CREATED)
    assert event.user_email == operator.email and admin_client.user.email in event.details


def test_admin_token_cap_cannot_exceed_target_role(admin_client):
    operator = make_user("operator")
    response = admin_client.post(
        "/api/admin/user-tokens", {"email": operator.email, "name": "x", "max_role": "poweruser"}, format="json"
    )
    assert response.status_code == 400
    assert "max_role" in response.json()["fields"]


def test_admin_token_for_unknown_email_is_400(admin_client):
    response = admin_client.post("/api/admin/user-tokens", {"email": "nobody@example.com", "name": "x"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["fields"]


def test_admin_token_for_disabled_user_is_400(admin_client):
    user = make_user("operator", active=False)
    response = admin_client.post("/api/admin/user-tokens", {"email": user.email, "name": "x"}, format="json")
    assert response.status_code == 400
    assert not UserToken.objects.exists()


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 403), ("admin", 200)])
def test_admin_list_tokens_by_role(client_as, role, status):
    make_user_token(make_user("poweruser"))
    response = client_as(role).get("/api/admin/user-tokens")
    assert response.status_code == status
    if status == 200:
        assert len(response.json()) == 1 and "token" not in response.json()[0]


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 403), ("admin", 204)])
def test_admin_revoke_token_by_role(client_as, role, status):
    token, plaintext = make_user_token(make_user("poweruser"))
    assert client_as(role).delete(f"/api/admin/user-tokens/{token.id}").status_code == status
    assert (bearer(plaintext).get("/api/me").status_code == 401) is (status == 204)


# --- admin: /api/admin/token-audit ---------------------------------------------------------


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 403), ("admin", 200)])
def test_token_audit_by_role(client_as, role, status):
    assert client_as(role).get("/api/admin/token-audit").status_code == status


def test_token_audit_records_create_failure_and_revoke_with_ip(client_as, admin_client):
    client = client_as("poweruser")
    created = client.post("/api/me/tokens", {"name": "audited"}, format="json", REMOTE_ADDR="127.0.0.5").json()
    client.delete(f"/api/me/tokens/{created['id']}", REMOTE_ADDR="127.0.0.6")
    bearer(created["token"]).get("/api/me", REMOTE_ADDR="127.0.0.7")
    events = admin_client.get(f"/api/admin/token-audit?email={client.user.email}").json()
    assert [(e["action"], e["ip_addr"]) for e in events] == [
        ("token.use_failed", "127.0.0.7"),
        ("token.revoked", "127.0.0.6"),
        ("token.created", "127.0.0.5"),
    ]
    assert set(events[0]) == {"created_at", "user_email", "token_name", "action", "ip_addr", "details"}
    assert all(e["token_name"] == "audited" for e in events)
    assert created["token"] not in repr(events)


def test_token_audit_limit_and_email_filter(admin_client):
    alice, bob = make_user("poweruser"), make_user("poweruser")
    for i in range(3):
        make_user_token(alice, name=f"a{i}")
    make_user_token(bob, name="b")
    assert len(admin_client.get("/api/admin/token-audit?limit=2").json()) == 2
    assert len(admin_client.get(f"/api/admin/token-audit?email={alice.email}").json()) == 3
    assert len(admin_client.get("/api/admin/token-audit").json()) == 4


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "limit=-5"])
def test_token_audit_bad_limit_is_400(admin_client, query):
    response = admin_client.get(f"/api/admin/token-audit?{query}")
    assert response.status_code == 400
    assert "limit" in response.json()["fields"]


def test_max_role_must_be_known_role_name(client_as):
    Role.objects.create(name="deployer", permissions=["sessions.connect"])
    client = client_as("poweruser")
    response = client.post("/api/me/tokens", {"name": "d", "max_role": "deployer"}, format="json")
    assert response.status_code == 201
    assert response.json()["max_role"] == "deployer"
