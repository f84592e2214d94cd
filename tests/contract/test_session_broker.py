"""session-broker.txt: the documented paths built so far route, refuse anonymous callers, and
answer with the documented keys; the OpenAPI schema describes each of them."""

import pytest

from tests.contract.conftest import assert_in_schema
from tests.factories import make_address_book_folder, make_connection, make_user, make_user_token

pytestmark = pytest.mark.django_db

SESSION_ID = "550e8400-e29b-41d4-a716-446655440000"
# Public, but only to holders of the share key: without it, a 404 (never a 401).
KEY_PROTECTED = {"/api/sessions/{id}/banner"}

# (method, path as documented, concrete path, needs authentication)
DOCUMENTED = [
    ("get", "/api/health", "/api/health", False),
    ("get", "/api/users", "/api/users", True),
    ("put", "/api/users/{email}/role", "/api/users/a@example.com/role", True),
    ("delete", "/api/users/{email}", "/api/users/a@example.com", True),
    ("post", "/api/users/{email}/disable", "/api/users/a@example.com/disable", True),
    ("post", "/api/users/{email}/enable", "/api/users/a@example.com/enable", True),
    ("delete", "/api/users/{email}/sessions", "/api/users/a@example.com/sessions", True),
    ("post", "/api/me/tokens", "/api/me/tokens", True),
    ("get", "/api/me/tokens", "/api/me/tokens", True),
    ("delete", "/api/me/tokens/{id}", "/api/me/tokens/1", True),
    ("post", "/api/admin/user-tokens", "/api/admin/user-tokens", True),
    ("get", "/api/admin/user-tokens", "/api/admin/user-tokens", True),
    ("delete", "/api/admin/user-tokens/{id}", "/api/admin/user-tokens/1", True),
    ("get", "/api/admin/token-audit", "/api/admin/token-audit", True),
    ("get", "/api/addressbook/folders", "/api/addressbook/folders", True),
    ("post", "/api/addressbook/folders", "/api/addressbook/folders", True),
    ("put", "/api/addressbook/folders/{scope}/{folder}", "/api/addressbook/folders/shared/x", True),
    ("delete", "/api/addressbook/folders/{scope}/{folder}", "/api/addressbook/folders/shared/x", True),
    ("get", "/api/addressbook/folders/{scope}/{folder}/entries", "/api/addressbook/folders/shared/x/entries", True),
    ("post", "/api/addressbook/folders/{scope}/{folder}/entries", "/api/addressbook/folders/shared/x/entries", True),
    (
        "put",
        "/api/addressbook/folders/{scope}/{folder}/entries/{entry}",
        "/api/addressbook/folders/shared/x/entries/y",
        True,
    ),
    (
        "delete",
        "/api/addressbook/folders/{scope}/{folder}/entries/{entry}",
        "/api/addressbook/folders/shared/x/entries/y",
        True,
    ),
    (
        "post",
        "/api/addressbook/folders/{scope}/{folder}/entries/{entry}/connect",
        "/api/addressbook/folders/shared/x/entries/y/connect",
        True,
    ),
    ("post", "/api/sessions", "/api/sessions", True),
    ("get", "/api/sessions", "/api/sessions", True),
    ("get", "/api/sessions/{id}", f"/api/sessions/{SESSION_ID}", True),
    ("delete", "/api/sessions/{id}", f"/api/sessions/{SESSION_ID}", True),
    ("get", "/api/sessions/{id}/banner", f"/api/sessions/{SESSION_ID}/banner", False),
    ("get", "/api/auth/status", "/api/auth/status", False),
    ("get", "/api/me", "/api/me", True),
]


@pytest.mark.parametrize("method, documented, concrete, protected", DOCUMENTED)
def test_documented_path_routes_and_guards(api_client, method, documented, concrete, protected):
    response = getattr(api_client, method)(concrete, format="json")
    assert response.status_code != 404 or not protected
    if protected:
        assert response.status_code == 401
    elif documented in KEY_PROTECTED:
        assert response.status_code == 404
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("method, documented, concrete, protected", DOCUMENTED)
def test_documented_path_is_in_openapi_schema(schema, method, documented, concrete, protected):
    assert_in_schema(schema, method, documented)


def test_auth_status_keys(api_client):
    assert set(api_client.get("/api/auth/status").json()) == {"oidc_enabled", "site_title"}


def test_me_keys(client_as):
    documented = {"name", "email", "role", "groups", "auth_type", "vault_enabled", "vault_configured"}
    assert documented <= set(client_as("viewer").get("/api/me").json())


def test_token_create_keys(client_as):
    documented = {"id", "name", "token", "max_role", "expires_at"}
    body = client_as("poweruser").post(
        "/api/me/tokens", {"name": "my-ci-token", "max_role": "operator"}, format="json"
    ).json()
    assert documented <= set(body)


def test_token_audit_keys(admin_client):
    make_user_token(make_user("poweruser"))
    events = admin_client.get("/api/admin/token-audit").json()
    assert set(events[0]) == {"created_at", "user_email", "token_name", "action", "ip_addr", "details"}


SESSION_CREATED_KEYS = {"session_id", "client_url", "share_url"}


def test_session_create_keys(client_as):
    body = client_as("poweruser").post(
        "/api/sessions",
        {"session_type": "ssh", "hostname": "10.0.0.1", "port": 22, "username": "root", "password": "secret"},
        format="json",
    ).json()
    assert set(body) == SESSION_CREATED_KEYS
    assert body["client_url"] == f"/client/{body['session_id']}"
    # Unlike the document's "<client_url>&key=…", the key rides in the fragment: URLs are logged.
    assert body["share_url"].startswith(f"{body['client_url']}/join#key=")


def test_session_create_with_ephemeral_keypair_keys(client_as):
    body = client_as("poweruser").post(
        "/api/sessions", {"session_type": "ssh", "hostname": "10.0.0.1", "username": "root", "generate_keypair": True},
        format="json",
    ).json()
    assert set(body) == SESSION_CREATED_KEYS | {"banner_text"}
    assert body["banner_text"].startswith("ssh-ed25519 ")


def test_session_list_and_detail_keys(client_as):
    client = client_as("poweruser")
    created = client.post("/api/sessions", {"session_type": "ssh", "hostname": "10.0.0.1"}, format="json").json()
    (listed,) = client.get("/api/sessions").json()
    detail = client.get(f"/api/sessions/{created['session_id']}").json()
    assert listed == detail
    assert {"session_id", "session_type", "hostname", "port", "username", "status", "client_url"} <= set(detail)


def test_session_delete_routes_for_its_owner(client_as):
    client = client_as("poweruser")
    created = client.post("/api/sessions", {"session_type": "ssh", "hostname": "10.0.0.1"}, format="json").json()
    response = client.delete(f"/api/sessions/{created['session_id']}")
    assert response.status_code == 200 and response.json()["status"] == "terminated"


def test_session_banner_keys(client_as, api_client):
    created = client_as("poweruser").post(
        "/api/sessions", {"session_type": "ssh", "hostname": "10.0.0.1", "generate_keypair": True}, format="json"
    ).json()
    key = created["share_url"].partition("#key=")[2]
    response = api_client.get(f"/api/sessions/{created['session_id']}/banner", HTTP_X_SHARE_KEY=key)
    assert response.status_code == 200
    assert set(response.json()) == {"banner_text", "public_key"}


def test_address_book_connect_keys(client_as):
    folder = make_address_book_folder("production", groups=["ops"])
    make_connection(None, "web-server-01", group=folder, host="10.0.0.5", username="deploy", password="pw")
    response = client_as("operator", groups=["ops"]).post(
        "/api/addressbook/folders/shared/production/entries/web-server-01/connect",
        {"width": 1920, "height": 1080, "dpi": 96, "banner": "Custom banner message"},
        format="json",
    )
    assert response.status_code == 201
    assert set(response.json()) == SESSION_CREATED_KEYS


def test_quick_connect_is_a_browser_flow_outside_the_schema(schema, client):
    assert "/api/connect" not in schema["paths"]
    response = client.get("/api/connect?hostname=10.0.1.50&protocol=ssh")
    assert response.status_code == 302  # to sign in, not a JSON 401
