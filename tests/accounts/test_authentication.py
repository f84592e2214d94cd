from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.choices import AuditAction
from accounts.models import ApiKey, AuditEvent
from accounts.services.tokens import revoke_api_key
from tests.factories import make_api_key, make_user, make_user_token

pytestmark = pytest.mark.django_db


def get_me(**headers):
    return APIClient().get("/api/me", **headers)


@pytest.mark.parametrize(
    "header",
    ["HTTP_AUTHORIZATION=Bearer {}", "HTTP_AUTHORIZATION=Token {}", "HTTP_AUTHORIZATION=bearer {}", "HTTP_X_API_KEY={}"],
)
@pytest.mark.parametrize("kind", ["api_key", "user_token"])
def test_every_header_form_authenticates(header, kind):
    user = make_user("operator")
    _, token = make_api_key(user) if kind == "api_key" else make_user_token(user)
    name, value = header.split("=", 1)
    response = get_me(**{name: value.format(token)})
    assert response.status_code == 200
    assert response.json()["auth_type"] == kind and response.json()["email"] == user.email


def test_me_reports_documented_fields_for_a_session(client_as):
    client = client_as("operator", groups=["engineering"], display_name="Olive Operator")
    me = client.get("/api/me").json()
    assert {"name", "email", "role", "groups", "auth_type", "vault_enabled", "vault_configured"} <= set(me)
    assert (me["name"], me["role"], me["groups"], me["auth_type"]) == (
        "Olive Operator",
        "operator",
        ["engineering"],
        "local",
    )
    assert me["vault_enabled"] is True and me["vault_configured"] is True


@pytest.mark.parametrize(
    "value",
    ["Bearer ", "Bearer nocolon", "Bearer name:", "Bearer :secret", "Bearer pamu_", "Token ghost:secret"],
)
def test_malformed_or_unknown_tokens_are_401(value):
    response = get_me(HTTP_AUTHORIZATION=value)
    assert response.status_code == 401
    assert response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_basic_auth_is_not_a_token_and_stays_anonymous():
    response = get_me(HTTP_AUTHORIZATION="Basic YWRtaW46YWRtaW4=")
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication credentials were not provided."}


def test_wrong_secret_for_a_real_key_is_audited_against_its_owner():
    user = make_user("admin")
    key, _ = make_api_key(user, name="deploy")
    response = get_me(HTTP_X_API_KEY="deploy:wrong-secret", REMOTE_ADDR="127.0.0.3")
    assert response.status_code == 401 and response.json() == {"error": "Invalid token."}
    event = AuditEvent.objects.get(action=AuditAction.API_KEY_USE_FAILED)
    assert (event.user_email, event.object_name, event.ip_addr) == (user.email, "deploy", "127.0.0.3")


@pytest.mark.parametrize("header", ["HTTP_X_API_KEY", "HTTP_AUTHORIZATION"])
def test_a_key_sent_without_its_name_is_not_written_to_the_audit_log(header):
    """An auditor reads key names in the log: a secret logged as a name would complete a key."""
    _, token = make_api_key(make_user("admin"), name="deploy")
    secret = token.partition(":")[2]
    value = f"Bearer {secret}" if header == "HTTP_AUTHORIZATION" else secret
    assert get_me(**{header: value, "REMOTE_ADDR": "127.0.0.4"}).status_code == 401
    event = AuditEvent.objects.get(action=AuditAction.API_KEY_USE_FAILED)
    assert event.object_name == "" and secret not in event.details
    assert not AuditEvent.objects.filter(object_name__contains=secret[:12]).exists()


def test_expired_api_key_is_refused():
    key, token = make_api_key(make_user("admin"))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = get_me(HTTP_X_API_KEY=token)
    assert response.status_code == 401 and response.json()["error"] == "The token has expired."


def test_revoked_api_key_is_refused_at_once():
    key, token = make_api_key(make_user("admin"))
    assert get_me(HTTP_X_API_KEY=token).status_code == 200
    revoke_api_key(api_key=key)
    assert get_me(HTTP_X_API_KEY=token).status_code == 401
    assert AuditEvent.objects.filter(action=AuditAction.API_KEY_REVOKED).count() == 1


def test_api_key_ip_allow_list():
    _, token = make_api_key(make_user("admin"), allowed_ips=["127.0.0.0/30", "::1"])
    assert get_me(HTTP_X_API_KEY=token, REMOTE_ADDR="127.0.0.2").status_code == 200
    assert get_me(HTTP_X_API_KEY=token, REMOTE_ADDR="::1").status_code == 200
    refused = get_me(HTTP_X_API_KEY=token, REMOTE_ADDR="127.0.0.9")
    assert refused.status_code == 401 and "address" in refused.json()["error"]


def test_forwarded_for_is_ignored_unless_from_a_trusted_proxy(settings):
    _, token = make_api_key(make_user("admin"), allowed_ips=["127.0.0.2"])
    spoofed = {"HTTP_X_API_KEY": token, "REMOTE_ADDR": "127.0.0.9", "HTTP_X_FORWARDED_FOR": "127.0.0.2"}
    assert get_me(**spoofed).status_code == 401
    settings.TRUSTED_PROXIES = ["127.0.0.9"]
    assert get_me(**spoofed).status_code == 200


def test_api_key_secret_is_stored_hashed():
    _, token = make_api_key(make_user("admin"), name="hashed")
    secret = token.split(":", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apikey")
        dumped = repr(cursor.fetchall())
    assert "hashed" in dumped and secret not in dumped


def test_create_api_key_command_prints_token_last():
    make_user("admin", username="ops")
    out = StringIO()
    call_command("create_api_key", "automation", "--user", "ops", "--allow-ip", "127.0.0.1", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    assert token.startswith("automation:")
    assert get_me(HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="127.0.0.1").json()["email"] == "ops@example.com"
    assert ApiKey.objects.get(name="automation").allowed_ips == ["127.0.0.1/32"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["k1", "--user", "nobody"], "No user named"),
        (["bad name", "--user", "ops"], "API key names"),
        (["pamu_x", "--user", "ops"], "API key names"),
        (["k2", "--user", "ops", "--expires-at", "soon"], "ISO 8601"),
        (["k3", "--user", "ops", "--expires-at", "2001-01-01T00:00:00Z"], "future"),
        (["k4", "--user", "ops", "--allow-ip", "not-an-ip"], "not an IP"),
    ],
)
def test_create_api_key_command_rejects_bad_input(args, message):
    make_user("admin", username="ops")
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args, stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_create_api_key_command_rejects_duplicate_name():
    make_user("admin", username="ops")
    call_command("create_api_key", "dup", "--user", "ops", stdout=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_api_key", "dup", "--user", "ops", stdout=StringIO())
    assert ApiKey.objects.filter(name="dup").count() == 1


def test_login_and_failed_login_are_audited(client):
    user = make_user("operator")
    client.post("/login", {"username": user.username, "password": "wrong"}, REMOTE_ADDR="127.0.0.4")
    client.post("/login", {"username": user.username, "password": "correct horse battery staple"})
    failed = AuditEvent.objects.get(action=AuditAction.USER_LOGIN_FAILED)
    assert failed.object_name == user.username and failed.ip_addr == "127.0.0.4"
    assert "wrong" not in failed.details
    assert AuditEvent.objects.filter(action=AuditAction.USER_LOGIN, user=user).exists()


@pytest.mark.parametrize("role", ["viewer", "operator", "poweruser", "admin"])
def test_me_for_every_role(client_as, role):
    me = client_as(role).get("/api/me").json()
    assert me["role"] == role
    assert ("users.manage" in me["permissions"]) is (role == "admin")


@pytest.mark.parametrize("path", ["/api/health", "/api/auth/status"])
def test_public_endpoints_ignore_bad_credentials(path):
    assert APIClient().get(path, HTTP_AUTHORIZATION="Bearer broken").status_code == 200
