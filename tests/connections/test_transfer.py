"""GET /api/connections/export and POST /api/connections/import: round trip, hostile files."""

import json

import pytest

from accounts.models import AuditEvent
from connections.models import Connection, ConnectionGroup, JumpHop
from connections.services.transfer import import_connections
from pam.exceptions import InvalidInput
from tests.factories import make_connection, make_folder, make_user

pytestmark = pytest.mark.django_db


def counts():
    return ConnectionGroup.objects.count(), Connection.objects.count(), JumpHop.objects.count()


@pytest.fixture
def exporter(client_as, ssh_key):
    client = client_as("poweruser")
    prod = make_folder(client.user, "Production")
    web = make_folder(client.user, "Web", parent=prod)
    conn = make_connection(client.user, "Web Server", group=web, password="pw-secret", private_key=ssh_key, tags=["prod"])
    JumpHop.objects.create(connection=conn, position=0, host="10.0.0.9", username="jump", password="hop-secret")
    make_connection(client.user, "loose", protocol="rdp", extra_config={"domain": "CORP"})
    make_connection(make_user("poweruser"), "not-mine")
    return client


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 200), ("admin", 200)])
def test_export_by_role(client_as, role, status):
    assert client_as(role).get("/api/connections/export").status_code == status


def test_export_is_an_attachment_without_credentials(exporter, ssh_key):
    response = exporter.get("/api/connections/export")
    assert response["Content-Disposition"].startswith('attachment; filename="pam-connections-')
    text = response.content.decode()
    document = json.loads(text)
    assert document["version"] == 1
    assert {c["name"] for c in document["connections"]} == {"Web Server", "loose"}
    assert [g["name"] for g in document["groups"]] == ["Production", "Web"]
    for secret in ("pw-secret", "hop-secret", ssh_key.splitlines()[1], '"password"', '"privateKey"'):
        assert secret not in text
    assert AuditEvent.objects.filter(action="connections.exported", user=exporter.user).exists()


def test_round_trip_creates_new_groups_and_remaps_ids(exporter, client_as):
    document = exporter.get("/api/connections/export").json()
    importer = client_as("poweruser")
    response = importer.post("/api/connections/import", document, format="json")
    assert response.status_code == 201, response.content
    result = response.json()
    assert (result["groupsCreated"], result["connectionsCreated"]) == (2, 2)
    old_prod, old_web = (g["id"] for g in document["groups"])
    new_web = ConnectionGroup.objects.get(pk=result["newGroupIds"][old_web])
    assert new_web.owner == importer.user and new_web.parent_id == result["newGroupIds"][old_prod]
    imported = Connection.objects.get(owner=importer.user, name="Web Server")
    assert imported.group == new_web and [t.name for t in imported.tag_set.all()] == ["prod"]
    assert imported.password == "" and imported.jump_hops.get().host == "10.0.0.9"
    assert Connection.objects.get(owner=importer.user, name="loose").extra_config == {"domain": "CORP"}


def test_documented_example_imports(client_as):
    body = {
        "version": 1,
        "groups": [{"id": "grp_abc", "name": "Production", "parentId": None}],
        "connections": [{"name": "Web Server", "protocol": "ssh", "host": "10.0.0.1", "port": 22, "groupId": "grp_abc"}],
    }
    result = client_as("poweruser").post("/api/connections/import", body, format="json").json()
    assert result["groupsCreated"] == 1 and result["connectionsCreated"] == 1
    assert set(result["newGroupIds"]) == {"grp_abc"} and result["newGroupIds"]["grp_abc"].startswith("grp_")


def test_import_may_carry_credentials_which_are_encrypted(client_as):
    body = {"version": 1, "connections": [{"name": "c", "protocol": "ssh", "host": "10.0.0.1", "password": "imported-pw"}]}
    client_as("poweruser").post("/api/connections/import", body, format="json")
    assert Connection.objects.get().password == "imported-pw"


GOOD = {"name": "ok", "protocol": "ssh", "host": "10.0.0.1"}


@pytest.mark.parametrize(
    "document, message",
    [
        ({"groups": [], "connections": []}, "version"),
        ({"version": 2, "connections": [GOOD]}, "version"),
        ({"version": "1", "connections": [GOOD]}, "version"),
        ({"version": 1, "groups": "none"}, "groups"),
        ({"version": 1, "groups": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]}, "used twice"),
        ({"version": 1, "groups": [{"id": "a", "name": "A", "parentId": "zzz"}]}, "unknown parentId"),
        ({"version": 1, "groups": [{"id": "a", "name": "A", "parentId": "a"}]}, "cycle"),
        (
            {"version": 1, "groups": [{"id": "a", "name": "A", "parentId": "b"}, {"id": "b", "name": "B", "parentId": "a"}]},
            "cycle",
        ),
        ({"version": 1, "connections": [GOOD, GOOD, GOOD, {**GOOD, "name": "x", "port": 70000}]}, "connections"),
        ({"version": 1, "connections": [GOOD, {**GOOD, "groupId": "nowhere"}]}, "connections[1]"),
        ({"version": 1, "connections": [GOOD, GOOD]}, "already exists"),
        ({"version": 1, "connections": [{**GOOD, "host": "169.254.169.254"}]}, "connections[0].host"),
        ({"version": 1, "connections": [GOOD, {"name": "w", "protocol": "web", "url": "http://169.254.169.254/"}]},
         "connections[1].url"),
        ({"version": 1, "connections": [{**GOOD, "protocol": "gopher"}]}, "protocol"),
        ({"version": 1, "connections": [{**GOOD, "name": "n" * 1_000_000}]}, "name"),
        ({"version": 1, "connections": [{**GOOD, "privateKey": "junk"}]}, "connections[0].privateKey"),
        ({"version": 1, "connections": "all"}, "connections"),
        ([1, 2, 3], "Invalid data"),
    ],
)
def test_hostile_files_change_nothing_and_name_the_item(client_as, document, message):
    client = client_as("poweruser")
    make_connection(client.user, "existing")
    before = counts()
    response = client.post("/api/connections/import", document, format="json")
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert message in json.dumps(body), body
    assert counts() == before


def test_port_error_names_the_fourth_connection(client_as):
    document = {"version": 1, "connections": [{**GOOD, "name": f"c{i}"} for i in range(3)] + [{**GOOD, "name": "bad", "port": 70000}]}
    body = client_as("poweruser").post("/api/connections/import", document, format="json").json()
    assert list(body["fields"]["connections"]["3"]) == ["port"]
    assert body["error"].startswith("connections[3].port: ")
    assert not Connection.objects.exists()


def test_name_clash_with_existing_ungrouped_connection_is_refused(client_as):
    client = client_as("poweruser")
    make_connection(client.user, "ok")
    response = client.post("/api/connections/import", {"version": 1, "connections": [GOOD]}, format="json")
    assert response.status_code == 400 and "connections[0]" in response.json()["error"]


def test_deep_nesting_is_refused(client_as):
    payload = '{"version": 1, "connections": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response = client_as("poweruser").post("/api/connections/import", payload, content_type="application/json")
    assert response.status_code == 400 and not Connection.objects.exists()


def test_long_parent_chain_imports_in_order(client_as):
    groups = [{"id": f"g{i}", "name": f"level {i}", "parentId": f"g{i - 1}" if i else None} for i in range(1500)]
    groups.reverse()  # children before parents in the file
    response = client_as("poweruser").post("/api/connections/import", {"version": 1, "groups": groups}, format="json")
    assert response.status_code == 201 and ConnectionGroup.objects.count() == 1500


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 201)])
def test_import_by_role(client_as, role, status):
    response = client_as(role).post("/api/connections/import", {"version": 1, "connections": [GOOD]}, format="json")
    assert response.status_code == status


def test_import_above_the_default_bound_saves_nothing(client_as, settings):
    assert settings.IMPORT_MAX_CONNECTIONS == 10_000
    client = client_as("poweruser")
    document = {"version": 1, "connections": [{**GOOD, "name": f"c{i}"} for i in range(10_001)]}
    response = client.post("/api/connections/import", document, format="json")
    assert response.status_code == 400 and "connections" in response.json()["fields"]
    assert counts() == (0, 0, 0)


def test_import_bound_follows_the_setting(client_as, settings):
    settings.IMPORT_MAX_CONNECTIONS = 3
    client = client_as("poweruser")
    document = {"version": 1, "connections": [{**GOOD, "name": f"c{i}"} for i in range(4)]}
    assert client.post("/api/connections/import", document, format="json").status_code == 400
    assert counts() == (0, 0, 0)
    document["connections"].pop()
    assert client.post("/api/connections/import", document, format="json").status_code == 201
    assert counts() == (0, 3, 0)


def test_import_service_applies_the_bound_itself(settings):
    settings.IMPORT_MAX_CONNECTIONS = 1
    with pytest.raises(InvalidInput, match="at most 1"):
        import_connections(actor=make_user("poweruser"), groups=[], connections=[GOOD, {**GOOD, "name": "b"}])
    assert counts() == (0, 0, 0)
