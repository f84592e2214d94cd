"""connection-manager.txt: every documented path routes, refuses anonymous callers, is in the
OpenAPI schema, and answers with the keys of the document's examples."""

import pytest

from tests.contract.conftest import assert_in_schema
from tests.factories import make_connection, make_folder

pytestmark = pytest.mark.django_db

DOCUMENTED = [
    ("get", "/api/connections"),
    ("post", "/api/connections"),
    ("get", "/api/connections/{id}"),
    ("put", "/api/connections/{id}"),
    ("delete", "/api/connections/{id}"),
    ("get", "/api/connections/{id}/session"),
    ("get", "/api/connections/{id}/shares"),
    ("put", "/api/connections/{id}/shares"),
    ("post", "/api/connections/health-check"),
    ("get", "/api/connections/export"),
    ("post", "/api/connections/import"),
    ("put", "/api/connections/reorder"),
    ("post", "/api/connections/groups"),
    ("put", "/api/connections/groups/{id}"),
    ("delete", "/api/connections/groups/{id}"),
    ("put", "/api/connections/groups/reorder"),
]


@pytest.mark.parametrize("method, path", DOCUMENTED)
def test_documented_path_refuses_anonymous(api_client, method, path):
    response = getattr(api_client, method)(path.replace("{id}", "conn_x"), {}, format="json")
    assert response.status_code == 401


@pytest.mark.parametrize("method, path", DOCUMENTED)
def test_documented_path_is_in_the_schema(schema, method, path):
    assert_in_schema(schema, method, path)


def test_example_keys(client_as, listener):
    client = client_as("poweruser")
    folder = client.post("/api/connections/groups", {"name": "Production", "parentId": None}, format="json").json()
    assert {"id", "name", "parentId"} <= set(folder)
    created = client.post(
        "/api/connections",
        {"name": "Web Server", "protocol": "ssh", "host": "127.0.0.1", "port": listener, "username": "root",
         "password": "secret", "groupId": folder["id"], "tags": ["prod", "linux"], "shared": False, "skipCertValidation": False},
        format="json",
    ).json()
    assert {"id", "name", "protocol", "host", "port", "username", "groupId", "shared"} <= set(created)
    listing = client.get("/api/connections").json()
    assert set(listing) == {"groups", "ungrouped", "sharedConnections"}
    assert {"id", "name", "parentId", "sortOrder"} <= set(listing["groups"][0])
    assert {"id", "name", "protocol", "host", "port", "tags"} <= set(listing["groups"][0]["connections"][0])
    detail = client.get(f"/api/connections/{created['id']}").json()
    assert {"id", "name", "protocol", "host", "port", "username", "groupId", "recordingEnabled", "hasPassword",
            "hasPrivateKey", "shared", "tunnels", "extraConfig", "tags", "shares", "skipCertValidation"} <= set(detail)
    assert set(client.get(f"/api/connections/{created['id']}/session").json()) >= {"host", "port", "username", "password"}
    assert client.get(f"/api/connections/{created['id']}/shares").json() == {"shares": []}
    health = client.post("/api/connections/health-check", {"checks": [{"id": created["id"]}]}, format="json").json()
    assert {"id", "reachable", "latencyMs"} <= set(health["results"][0])
    items = {"items": [{"id": created["id"], "sortOrder": 0}]}
    assert client.put("/api/connections/reorder", items, format="json").json() == {"success": True}
    exported = client.get("/api/connections/export").json()
    assert {"version", "groups", "connections"} <= set(exported)
    imported = client.post(
        "/api/connections/import",
        {"version": 1, "groups": [{"id": "grp_abc", "name": "Production", "parentId": None}],
         "connections": [{"name": "Web Server", "protocol": "ssh", "host": "10.0.0.1", "port": 22}]},
        format="json",
    ).json()
    assert set(imported) == {"groupsCreated", "connectionsCreated", "newGroupIds"}
    assert client.put(f"/api/connections/groups/{folder['id']}", {"name": "Prod Servers"}, format="json").json() == {"success": True}
    assert client.put("/api/connections/groups/reorder", {"items": [{"id": folder["id"], "sortOrder": 0}]}, format="json").json() == {"success": True}
    assert client.delete(f"/api/connections/{created['id']}").json() == {"success": True}
    assert client.delete(f"/api/connections/groups/{folder['id']}").json() == {"success": True}


def test_ids_are_accepted_wherever_returned(client_as):
    client = client_as("poweruser")
    folder = make_folder(client.user)
    conn = make_connection(client.user, group=folder)
    assert conn.pk.startswith("conn_") and folder.pk.startswith("grp_")
    for path in (f"/api/connections/{conn.pk}", f"/api/connections/{conn.pk}/shares"):
        assert client.get(path).status_code == 200
