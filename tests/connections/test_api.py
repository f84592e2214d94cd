"""connection-manager.txt at /api/connections: every endpoint, each role, bad input."""

import pytest
from django.db import connection as db

from accounts.choices import AuditAction
from accounts.models import AuditEvent, Role
from connections.models import Connection, ConnectionGroup, JumpHop, Share
from tests.factories import (
    make_address_book_folder,
    make_connection,
    make_folder,
    make_role,
    make_user,
)

pytestmark = pytest.mark.django_db

SSH = {"name": "Web Server", "protocol": "ssh", "host": "10.0.0.1", "port": 22, "username": "root", "password": "secret"}


def tree(client, query=""):
    response = client.get(f"/api/connections{query}")
    assert response.status_code == 200
    return response.json()


def ids_in(body):
    grouped = [c["id"] for g in body["groups"] for c in g["connections"]]
    return set(grouped + [c["id"] for c in body["ungrouped"]] + [c["id"] for c in body["sharedConnections"]])


def raw_rows(table):
    with db.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return repr(cursor.fetchall())


# --- listing -------------------------------------------------------------------------------


def test_listing_needs_authentication(api_client):
    assert api_client.get("/api/connections").status_code == 401


@pytest.mark.parametrize("role", ["viewer", "operator", "poweruser", "admin"])
def test_every_role_lists_its_tree(client_as, role):
    body = tree(client_as(role))
    assert set(body) == {"groups", "ungrouped", "sharedConnections"}


def test_tree_places_own_shared_and_address_book_connections(client_as):
    client = client_as("operator", groups=["ops"])
    me = client.user
    owner = make_user("poweruser")
    folder = make_folder(me, "Mine")
    in_folder = make_connection(me, "in-folder", group=folder)
    ungrouped = make_connection(me, "loose")
    to_me = make_connection(owner, "to-me")
    Share.objects.create(connection=to_me, user=me)
    to_role = make_connection(owner, "to-role")
    Share.objects.create(connection=to_role, role_id="operator")
    everyone = make_connection(owner, "everyone", shared=True)
    book = make_address_book_folder("prod", groups=["ops"])
    entry = make_connection(None, "entry", group=book)
    hidden_book = make_address_book_folder("secret", groups=["others"])
    make_connection(None, "hidden-entry", group=hidden_book)
    make_connection(owner, "not-mine")

    body = tree(client)
    groups = {g["name"]: g for g in body["groups"]}
    assert set(groups) == {"Mine", "prod"}
    assert [c["id"] for c in groups["Mine"]["connections"]] == [in_folder.pk]
    assert [c["id"] for c in groups["prod"]["connections"]] == [entry.pk] and groups["prod"]["scope"] == "shared"
    assert [c["id"] for c in body["ungrouped"]] == [ungrouped.pk]
    assert {c["id"] for c in body["sharedConnections"]} == {to_me.pk, to_role.pk, everyone.pk}
    assert all(c["own"] is False for c in body["sharedConnections"])


def test_summary_lists_each_connections_tags(client_as):
    client = client_as("poweruser")
    make_connection(client.user, "tagged", tags=["prod", "linux", "eu west"])
    make_connection(client.user, "bare")
    tags = {c["name"]: sorted(c["tags"]) for c in tree(client)["ungrouped"]}
    assert tags == {"tagged": ["eu west", "linux", "prod"], "bare": []}


def test_summary_shows_no_secret(client_as):
    client = client_as("poweruser")
    make_connection(client.user, "c", password="hunter2", private_key="x")
    text = client.get("/api/connections").content.decode()
    assert "hunter2" not in text and "password" not in text.lower().replace("promptcredentials", "")


def test_admin_sees_others_only_when_asking_for_all(client_as):
    make_connection(make_user("poweruser"), "someone-elses")
    admin = client_as("admin")
    assert ids_in(tree(admin)) == set()
    assert len(ids_in(tree(admin, "?all=true"))) == 1
    assert ids_in(tree(client_as("poweruser"), "?all=true")) == set()


def test_search_matches_name_host_and_tag(client_as):
    client = client_as("poweruser")
    by_name = make_connection(client.user, "db-primary", host="10.1.1.1")
    by_host = make_connection(client.user, "web", host="db.internal")
    by_tag = make_connection(client.user, "cache", host="10.2.2.2", tags=["database"])
    make_connection(client.user, "other", host="10.3.3.3")
    assert ids_in(tree(client, "?search=db")) == {by_name.pk, by_host.pk}
    assert ids_in(tree(client, "?search=datab")) == {by_tag.pk}
    assert ids_in(tree(client, "?tag=database")) == {by_tag.pk}
    make_connection(client.user, "desk", protocol="rdp", host="10.4.4.4")
    assert [c["name"] for c in tree(client, "?protocol=rdp")["ungrouped"]] == ["desk"]


def test_listing_query_count_does_not_grow(client_as, django_assert_num_queries):
    client = client_as("poweruser")
    folder = make_folder(client.user)
    for i in range(3):
        make_connection(client.user, f"a{i}", group=folder, tags=["x"])
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(db) as small:
        tree(client)
    for i in range(40):
        make_connection(client.user, f"b{i}", group=make_folder(client.user), tags=["y", "z"])
    with CaptureQueriesContext(db) as large:
        assert len(ids_in(tree(client))) == 43
    assert len(large) == len(small)


def test_tags_endpoint_lists_usable_tags(client_as):
    client = client_as("poweruser")
    make_connection(client.user, tags=["b", "a"])
    make_connection(make_user("poweruser"), tags=["hidden"])
    assert client.get("/api/connections/tags").json() == {"tags": ["a", "b"]}


# --- create --------------------------------------------------------------------------------


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 201), ("admin", 201)])
def test_create_by_role(client_as, role, status):
    response = client_as(role).post("/api/connections", SSH, format="json")
    assert response.status_code == status
    assert Connection.objects.count() == (1 if status == 201 else 0)


def test_create_returns_documented_fields_without_secrets(client_as):
    client = client_as("poweruser")
    folder = make_folder(client.user)
    body = client.post(
        "/api/connections", {**SSH, "groupId": folder.pk, "tags": ["prod", "linux"], "shared": False}, format="json"
    ).json()
    assert {"id", "name", "protocol", "host", "port", "username", "groupId", "shared"} <= set(body)
    assert body["id"].startswith("conn_") and body["groupId"] == folder.pk
    assert body["hasPassword"] is True and "password" not in body
    assert sorted(body["tags"]) == ["linux", "prod"]


def test_credentials_are_encrypted_at_rest(client_as, ssh_key):
    client = client_as("poweruser")
    client.post(
        "/api/connections",
        {**SSH, "password": "root-pw-123", "privateKey": ssh_key, "jumpHosts": [{"host": "10.9.9.9", "username": "j", "password": "hop-pw-456"}]},
        format="json",
    )
    dumped = raw_rows("connections_connection") + raw_rows("connections_jumphop")
    for secret in ("root-pw-123", "hop-pw-456", ssh_key.splitlines()[1]):
        assert secret not in dumped
    connection = Connection.objects.get()
    assert connection.password == "root-pw-123" and connection.private_key == ssh_key
    assert connection.jump_hops.get().password == "hop-pw-456"


def test_default_port_follows_protocol(client_as):
    client = client_as("poweruser")
    body = client.post("/api/connections", {"name": "r", "protocol": "rdp", "host": "10.0.0.2"}, format="json").json()
    assert body["port"] == 3389
    assert Connection.objects.get().port is None


BAD_CREATE = [
    ({"port": 0}, "port"),
    ({"port": 65536}, "port"),
    ({"port": -1}, "port"),
    ({"port": "22"}, "port"),
    ({"port": 22.5}, "port"),
    ({"port": True}, "port"),
    ({"protocol": "gopher"}, "protocol"),
    ({"protocol": 1}, "protocol"),
    ({"name": ""}, "name"),
    ({"name": "x" * 1_000_000}, "name"),
    ({"name": None}, "name"),
    ({"host": "a b"}, "host"),
    ({"host": "x" * 1_000_000}, "host"),
    ({"host": ""}, "host"),
    ({"username": 5}, "username"),
    ({"password": "p" * 1_000_000}, "password"),
    ({"password": 123}, "password"),
    ({"tags": "prod"}, "tags"),
    ({"tags": ["a,b"]}, "tags"),
    ({"tags": ["t" * 65]}, "tags"),
    ({"tags": [str(i) for i in range(33)]}, "tags"),
    ({"shared": "yes"}, "shared"),
    ({"extraConfig": ["not", "a", "dict"]}, "extraConfig"),
    ({"extraConfig": {"big": "x" * 10_000}}, "extraConfig"),
    ({"tunnels": [{"localPort": 0, "remoteHost": "db", "remotePort": 5432}]}, "tunnels"),
    ({"tunnels": "5432"}, "tunnels"),
    ({"privateKey": "not a key"}, "privateKey"),
    ({"jumpHosts": [{"host": "10.0.0.9"}]}, "jumpHosts"),
    ({"jumpHosts": [{"host": "h", "username": "u", "port": 99999}]}, "jumpHosts"),
    ({"jumpHosts": [{"host": "h", "username": "u"}] * 9}, "jumpHosts"),
    ({"groupId": "grp_doesnotexist"}, "groupId"),
    ({"groupId": 7}, "groupId"),
    ({"sortOrder": "first"}, "sortOrder"),
    ({"url": "javascript:alert(1)"}, "url"),
]


@pytest.mark.parametrize("change, field", BAD_CREATE)
def test_bad_create_is_400_and_saves_nothing(client_as, change, field):
    client = client_as("poweruser")
    response = client.post("/api/connections", {**SSH, **change}, format="json")
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["error"] and field in body["fields"], body
    assert Connection.objects.count() == 0 and JumpHop.objects.count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "w", "protocol": "web"}, "url"),
        ({"name": "s", "protocol": "ssh"}, "host"),
        ({**SSH, "protocol": "rdp", "privateKey": "__KEY__"}, "privateKey"),
        ({**SSH, "protocol": "rdp", "tunnels": [{"localPort": 1, "remoteHost": "x", "remotePort": 2}]}, "tunnels"),
    ],
)
def test_protocol_rules_are_400(client_as, ssh_key, body, field):
    body = {k: (ssh_key if v == "__KEY__" else v) for k, v in body.items()}
    response = client_as("poweruser").post("/api/connections", body, format="json")
    assert response.status_code == 400 and field in response.json()["fields"]
    assert not Connection.objects.exists()


def test_passphrase_protected_key_is_refused(client_as, encrypted_ssh_key):
    response = client_as("poweruser").post("/api/connections", {**SSH, "privateKey": encrypted_ssh_key}, format="json")
    assert response.status_code == 400 and "Passphrase" in response.json()["error"]


def test_malformed_json_is_400(client_as):
    response = client_as("poweruser").post("/api/connections", '{"name": ', content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_deeply_nested_json_is_400(client_as):
    response = client_as("poweruser").post("/api/connections", "[" * 100_000, content_type="application/json")
    assert response.status_code == 400


def test_web_connection(client_as):
    body = client_as("poweruser").post(
        "/api/connections", {"name": "intranet", "protocol": "web", "url": "https://intranet.example:8443/x"}, format="json"
    ).json()
    assert body["url"] == "https://intranet.example:8443/x"
    assert Connection.objects.get().endpoint() == ("intranet.example", 8443)


DENIED_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/",
    "http://169.254.1.1:8080/",
    "http://168.63.129.16/",
]


@pytest.mark.parametrize("url", DENIED_URLS)
def test_web_connection_to_a_denied_address_is_refused_on_create(client_as, url):
    response = client_as("poweruser").post("/api/connections", {"name": "meta", "protocol": "web", "url": url}, format="json")
    assert response.status_code == 400 and "not an allowed target" in response.json()["error"]
    assert "url" in response.json()["fields"]
    assert not Connection.objects.exists()


@pytest.mark.parametrize("url", DENIED_URLS)
def test_web_connection_cannot_be_pointed_at_a_denied_address(client_as, url):
    client = client_as("poweruser")
    created = client.post("/api/connections", {"name": "w", "protocol": "web", "url": "https://intranet.example/"}, format="json")
    response = client.put(f"/api/connections/{created.json()['id']}", {"url": url}, format="json")
    assert response.status_code == 400 and "url" in response.json()["fields"]
    assert Connection.objects.get().url == "https://intranet.example/"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"tunnels": [{"localPort": 40999, "remoteHost": "localhost", "remotePort": 6379}]}, "tunnels"),
        ({"jumpHosts": [{"host": "127.0.0.2", "username": "j"}], "host": "localhost", "port": 6379}, "host"),
    ],
)
def test_localhost_behind_a_hop_cannot_reach_pams_redis(client_as, settings, body, field):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    response = client_as("poweruser").post("/api/connections", {**SSH, **body}, format="json")
    assert response.status_code == 400 and "PAM's Redis" in response.json()["error"]
    assert not Connection.objects.exists()


def test_duplicate_name_in_a_folder_is_409(client_as):
    client = client_as("poweruser")
    folder = make_folder(client.user)
    assert client.post("/api/connections", {**SSH, "groupId": folder.pk}, format="json").status_code == 201
    response = client.post("/api/connections", {**SSH, "groupId": folder.pk}, format="json")
    assert response.status_code == 409 and "already exists" in response.json()["error"]
    assert client.post("/api/connections", SSH, format="json").status_code == 201  # ungrouped: fine
    assert client.post("/api/connections", SSH, format="json").status_code == 409
    assert Connection.objects.count() == 2


def test_cannot_create_in_someone_elses_folder(client_as):
    other_folder = make_folder(make_user("poweruser"))
    response = client_as("poweruser").post("/api/connections", {**SSH, "groupId": other_folder.pk}, format="json")
    assert response.status_code == 400 and "groupId" in response.json()["fields"]


def test_shared_flag_needs_share_permission(client_as):
    make_role("creator", ["connections.create"])
    response = client_as("creator").post("/api/connections", {**SSH, "shared": True}, format="json")
    assert response.status_code == 403 and not Connection.objects.exists()


def test_only_address_book_managers_create_in_address_book_folders(client_as):
    book = make_address_book_folder("prod")
    assert client_as("poweruser").post("/api/connections", {**SSH, "groupId": book.pk}, format="json").status_code == 400
    created = client_as("admin").post("/api/connections", {**SSH, "groupId": book.pk}, format="json")
    assert created.status_code == 201
    assert Connection.objects.get().owner is None


# --- retrieve / update / delete ------------------------------------------------------------


@pytest.fixture
def cast(client_as):
    """The owner, a user it is shared with, an unrelated poweruser, and an admin."""
    owner = client_as("poweruser")
    conn = make_connection(owner.user, "shared-one", password="pw-1", username="deploy")
    friend = client_as("operator")
    Share.objects.create(connection=conn, user=friend.user)
    return {"conn": conn, "owner": owner, "friend": friend, "stranger": client_as("poweruser"), "admin": client_as("admin")}


@pytest.mark.parametrize("who, status", [("owner", 200), ("friend", 200), ("stranger", 404), ("admin", 200)])
def test_retrieve_by_relation(cast, who, status):
    response = cast[who].get(f"/api/connections/{cast['conn'].pk}")
    assert response.status_code == status
    if status == 200:
        body = response.json()
        assert body["hasPassword"] is True and "pw-1" not in response.content.decode()
        expected = {"id", "name", "protocol", "host", "port", "username", "groupId", "recordingEnabled", "hasPassword",
                    "hasPrivateKey", "shared", "tunnels", "extraConfig", "tags", "shares", "skipCertValidation"}
        assert expected <= set(body)


def test_shares_in_detail_only_for_owner_and_admin(cast):
    url = f"/api/connections/{cast['conn'].pk}"
    assert len(cast["owner"].get(url).json()["shares"]) == 1
    assert len(cast["admin"].get(url).json()["shares"]) == 1
    assert cast["friend"].get(url).json()["shares"] == []


@pytest.mark.parametrize("who, status", [("owner", 200), ("friend", 403), ("stranger", 404), ("admin", 200)])
def test_update_by_relation(cast, who, status):
    response = cast[who].put(f"/api/connections/{cast['conn'].pk}", {"name": "renamed"}, format="json")
    assert response.status_code == status
    cast["conn"].refresh_from_db()
    assert (cast["conn"].name == "renamed") is (status == 200)
    if status == 200:
        assert response.json() == {"success": True}


@pytest.mark.parametrize("who, status", [("owner", 200), ("friend", 403), ("stranger", 404), ("admin", 200)])
def test_delete_by_relation(cast, who, status):
    response = cast[who].delete(f"/api/connections/{cast['conn'].pk}")
    assert response.status_code == status
    assert Connection.objects.filter(pk=cast["conn"].pk).exists() is (status != 200)


def test_update_is_a_merge_that_keeps_omitted_credentials(cast):
    url = f"/api/connections/{cast['conn'].pk}"
    owner = cast["owner"]
    assert owner.put(url, {"displayName": "Shared", "tags": ["prod", "updated"]}, format="json").status_code == 200
    conn = Connection.objects.get(pk=cast["conn"].pk)
    assert (conn.display_name, conn.password, conn.username) == ("Shared", "pw-1", "deploy")
    assert sorted(t.name for t in conn.tag_set.all()) == ["prod", "updated"]
    owner.put(url, {"password": "new-secret"}, format="json")
    assert Connection.objects.get(pk=conn.pk).password == "new-secret"
    owner.put(url, {"password": ""}, format="json")
    assert Connection.objects.get(pk=conn.pk).password == ""


def test_update_merges_jump_host_credentials_by_index(client_as):
    client = client_as("poweruser")
    created = client.post(
        "/api/connections",
        {**SSH, "jumpHosts": [{"host": "10.0.1.1", "username": "a", "password": "pa"}, {"host": "10.0.1.2", "username": "b", "password": "pb"}]},
        format="json",
    ).json()
    client.put(
        f"/api/connections/{created['id']}",
        {"jumpHosts": [{"host": "10.0.1.1", "username": "a", "port": 22}, {"host": "10.0.1.3", "username": "c", "password": "pc"}]},
        format="json",
    )
    hops = list(JumpHop.objects.order_by("position"))
    assert [(h.host, h.username, h.password) for h in hops] == [("10.0.1.1", "a", "pa"), ("10.0.1.3", "c", "pc")]


@pytest.mark.parametrize(
    "hop",
    [
        {"host": "10.6.6.6", "username": "a"},
        {"host": "10.0.1.1", "username": "a", "port": 2222},
        {"host": "10.0.1.1", "username": "root"},
    ],
)
def test_hop_credentials_never_follow_a_changed_target(client_as, hop):
    client = client_as("poweruser")
    created = client.post(
        "/api/connections", {**SSH, "jumpHosts": [{"host": "10.0.1.1", "username": "a", "password": "pa"}]}, format="json"
    ).json()
    client.put(f"/api/connections/{created['id']}", {"jumpHosts": [hop]}, format="json")
    assert JumpHop.objects.get().password == ""


@pytest.mark.parametrize(
    "change, field",
    [
        ({"jumpHosts": [{"host": "10.0.1.1", "password": "pa"}]}, "jumpHosts[0].username"),
        ({"jumpHosts": [{"username": "a"}]}, "jumpHosts[0].host"),
        ({"tunnels": [{"localPort": 15432, "remotePort": 5432}]}, "tunnels[0].remoteHost"),
    ],
)
def test_partial_update_with_an_incomplete_nested_object_is_400(client_as, change, field):
    """An update replaces jump hosts and tunnels whole; half of one answered 500 (KeyError)."""
    client = client_as("poweruser")
    created = client.post(
        "/api/connections", {**SSH, "jumpHosts": [{"host": "10.0.1.1", "username": "a", "password": "pa"}]}, format="json"
    ).json()
    response = client.put(f"/api/connections/{created['id']}", change, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith(field)
    assert [(h.host, h.username, h.password) for h in JumpHop.objects.all()] == [("10.0.1.1", "a", "pa")]


def test_hop_errors_name_the_hop(client_as):
    hops = [{"host": "10.0.0.1", "username": "a"}, {"host": "0xa9fea9fe", "username": "b"}]
    response = client_as("poweruser").post("/api/connections", {**SSH, "jumpHosts": hops}, format="json")
    assert response.status_code == 400 and "jumpHosts[1].host" in response.json()["fields"]
    hops = [{"host": "10.0.0.1", "username": "a", "privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----"}]
    response = client_as("poweruser").post("/api/connections", {**SSH, "jumpHosts": hops}, format="json")
    assert response.status_code == 400 and "jumpHosts[0].privateKey" in response.json()["fields"]


@pytest.mark.parametrize(
    "config",
    [{"security": "whatever"}, {"color_depth": "banana"}, {"color_depth": True}, {"enable_drive": "yes"},
     {"login_script": "../x"}, {"resolution": "huge"}, {"allowed_domains": "example.com"}],
)
def test_known_options_are_checked_in_extra_config(client_as, config):
    body = {**SSH, "protocol": "rdp", "password": "x", "extraConfig": config}
    response = client_as("poweruser").post("/api/connections", body, format="json")
    assert response.status_code == 400 and "extraConfig" in response.json()["fields"]


def test_good_rdp_options_are_stored(client_as):
    config = {"domain": "CORP", "security": "nla", "resolution": "1920x1080", "color_depth": 24, "custom": {"a": 1}}
    body = client_as("poweruser").post("/api/connections", {**SSH, "protocol": "rdp", "extraConfig": config}, format="json")
    assert body.status_code == 201 and body.json()["extraConfig"] == config


@pytest.mark.parametrize("change", [{"port": 0}, {"protocol": "nope"}, {"name": "x" * 201}, {"host": "169.254.169.254"}])
def test_bad_update_changes_nothing(cast, change):
    url = f"/api/connections/{cast['conn'].pk}"
    before = Connection.objects.values().get(pk=cast["conn"].pk)
    response = cast["owner"].put(url, {"username": "changed", **change}, format="json")
    assert response.status_code == 400
    assert Connection.objects.values().get(pk=cast["conn"].pk) == before


def test_move_between_own_folders_but_not_into_anothers(client_as):
    client = client_as("poweruser")
    first, second = make_folder(client.user), make_folder(client.user)
    conn = make_connection(client.user, group=first)
    assert client.put(f"/api/connections/{conn.pk}", {"groupId": second.pk}, format="json").status_code == 200
    assert Connection.objects.get(pk=conn.pk).group == second
    foreign = make_folder(make_user("poweruser"))
    assert client.put(f"/api/connections/{conn.pk}", {"groupId": foreign.pk}, format="json").status_code == 400
    assert client.put(f"/api/connections/{conn.pk}", {"groupId": None}, format="json").status_code == 200
    assert Connection.objects.get(pk=conn.pk).group is None


def test_personal_connection_cannot_move_into_the_address_book(client_as):
    admin = client_as("admin")
    conn = make_connection(admin.user)
    book = make_address_book_folder("prod")
    assert admin.put(f"/api/connections/{conn.pk}", {"groupId": book.pk}, format="json").status_code == 400


def test_unknown_connection_is_404(client_as):
    assert client_as("admin").get("/api/connections/conn_nope").status_code == 404


# --- credentials (/session) ----------------------------------------------------------------


def test_owner_reads_credentials_and_it_is_audited(cast):
    response = cast["owner"].get(f"/api/connections/{cast['conn'].pk}/session", REMOTE_ADDR="127.0.0.8")
    assert response.status_code == 200
    body = response.json()
    assert {"host", "port", "username", "password"} <= set(body) and body["password"] == "pw-1"
    event = AuditEvent.objects.get(action=AuditAction.CONNECTION_CREDENTIALS_READ)
    assert event.user == cast["owner"].user and event.ip_addr == "127.0.0.8" and cast["conn"].pk in event.object_name
    assert "pw-1" not in event.details


@pytest.mark.parametrize("who, status", [("friend", 403), ("stranger", 404), ("admin", 200)])
def test_credentials_by_relation(cast, who, status):
    response = cast[who].get(f"/api/connections/{cast['conn'].pk}/session")
    assert response.status_code == status
    assert ("pw-1" in response.content.decode()) is (status == 200)
    assert AuditEvent.objects.filter(action=AuditAction.CONNECTION_CREDENTIALS_READ).count() == (1 if status == 200 else 0)


def test_role_share_and_address_book_never_reveal(client_as):
    operator = client_as("operator", groups=["ops"])
    conn = make_connection(make_user("poweruser"), password="pw")
    Share.objects.create(connection=conn, role_id="operator")
    entry = make_connection(None, "entry", group=make_address_book_folder("prod", groups=["ops"]), password="pw2")
    assert operator.get(f"/api/connections/{conn.pk}").status_code == 200
    assert operator.get(f"/api/connections/{conn.pk}/session").status_code == 403
    assert operator.get(f"/api/connections/{entry.pk}/session").status_code == 403


def test_reveal_permission_is_a_catalogued_permission(client_as):
    make_role("credential-auditor", ["connections.reveal_credentials", "connections.edit_any"])
    conn = make_connection(make_user("poweruser"), password="pw")
    assert client_as("credential-auditor").get(f"/api/connections/{conn.pk}/session").json()["password"] == "pw"


# --- shares --------------------------------------------------------------------------------


@pytest.mark.parametrize("who, status", [("owner", 200), ("friend", 403), ("stranger", 404), ("admin", 200)])
def test_read_shares_by_relation(cast, who, status):
    response = cast[who].get(f"/api/connections/{cast['conn'].pk}/shares")
    assert response.status_code == status
    if status == 200:
        share = response.json()["shares"][0]
        assert share["id"].startswith("share_") and share["shareType"] == "user"
        assert share["targetId"] == f"user_{cast['friend'].user.pk}" and share["createdAt"]


def test_replace_shares_grants_and_revokes_use(cast, client_as):
    conn, owner = cast["conn"], cast["owner"]
    newcomer = client_as("viewer")
    body = {"shares": [{"shareType": "user", "targetId": f"user_{newcomer.user.pk}"}, {"shareType": "role", "targetId": "role_operator"}]}
    assert owner.put(f"/api/connections/{conn.pk}/shares", body, format="json").json() == {"success": True}
    assert conn.pk in {c["id"] for c in tree(newcomer)["sharedConnections"]}
    assert conn.pk in {c["id"] for c in tree(client_as("operator"))["sharedConnections"]}
    assert newcomer.put(f"/api/connections/{conn.pk}", {"name": "x"}, format="json").status_code == 403
    assert owner.put(f"/api/connections/{conn.pk}/shares", {"shares": []}, format="json").status_code == 200
    assert tree(newcomer)["sharedConnections"] == []
    assert newcomer.get(f"/api/connections/{conn.pk}").status_code == 404
    assert AuditEvent.objects.filter(action=AuditAction.CONNECTION_SHARES_CHANGED).count() == 2


@pytest.mark.parametrize("who, status", [("friend", 403), ("stranger", 404), ("admin", 200)])
def test_change_shares_by_relation(cast, who, status):
    response = cast[who].put(f"/api/connections/{cast['conn'].pk}/shares", {"shares": []}, format="json")
    assert response.status_code == status


def test_share_by_email_and_custom_role(cast):
    make_role("oncall", ["sessions.connect"])
    other = make_user("viewer", email="pat@example.com")
    body = {"shares": [{"shareType": "user", "targetId": "PAT@example.com"}, {"shareType": "role", "targetId": "role_oncall"}]}
    assert cast["owner"].put(f"/api/connections/{cast['conn'].pk}/shares", body, format="json").status_code == 200
    assert set(Share.objects.values_list("user_id", "role_id")) == {(other.pk, None), (None, "oncall")}


@pytest.mark.parametrize(
    "shares",
    [
        [{"shareType": "user", "targetId": "user_999999"}],
        [{"shareType": "role", "targetId": "role_emperor"}],
        [{"shareType": "group", "targetId": "role_admin"}],
        [{"shareType": "user"}],
        [{"shareType": "role", "targetId": "role_admin"}, {"shareType": "role", "targetId": "role_admin"}],
        "everyone",
    ],
)
def test_bad_shares_are_400_and_keep_the_old_ones(cast, shares):
    response = cast["owner"].put(f"/api/connections/{cast['conn'].pk}/shares", {"shares": shares}, format="json")
    assert response.status_code == 400
    assert list(Share.objects.values_list("user_id", flat=True)) == [cast["friend"].user.pk]


def test_sharing_with_the_owner_is_400(cast):
    body = {"shares": [{"shareType": "user", "targetId": f"user_{cast['owner'].user.pk}"}]}
    assert cast["owner"].put(f"/api/connections/{cast['conn'].pk}/shares", body, format="json").status_code == 400


def test_share_targets_for_sharers_only(client_as):
    make_user("operator", email="olga@example.com")
    body = client_as("poweruser").get("/api/connections/share-targets?search=olga").json()
    assert [u["email"] for u in body["users"]] == ["olga@example.com"]
    assert {"targetId": "role_operator", "name": "operator"} in body["roles"]
    assert client_as("operator").get("/api/connections/share-targets").status_code == 403


# --- reorder -------------------------------------------------------------------------------


def test_reorder_connections_is_reflected_in_the_tree(client_as):
    client = client_as("poweruser")
    a, b, c = (make_connection(client.user, n) for n in "abc")
    items = [{"id": c.pk, "sortOrder": 0}, {"id": a.pk, "sortOrder": 1}, {"id": b.pk, "sortOrder": 2}]
    assert client.put("/api/connections/reorder", {"items": items}, format="json").json() == {"success": True}
    assert [x["name"] for x in tree(client)["ungrouped"]] == ["c", "a", "b"]


@pytest.mark.parametrize("bad", ["conn_unknown", "FOREIGN", "DUPLICATE"])
def test_reorder_is_all_or_nothing(client_as, bad):
    client = client_as("poweruser")
    a, b = make_connection(client.user, "a"), make_connection(client.user, "b")
    foreign = make_connection(make_user("poweruser"), "f")
    bad_id = {"FOREIGN": foreign.pk, "DUPLICATE": a.pk}.get(bad, bad)
    items = [{"id": a.pk, "sortOrder": 5}, {"id": b.pk, "sortOrder": 6}, {"id": bad_id, "sortOrder": 7}]
    assert client.put("/api/connections/reorder", {"items": items}, format="json").status_code == 400
    assert set(Connection.objects.values_list("sort_order", flat=True)) == {0}


def test_reorder_folders(client_as):
    client = client_as("poweruser")
    x, y = make_folder(client.user, "x"), make_folder(client.user, "y")
    items = [{"id": y.pk, "sortOrder": 0}, {"id": x.pk, "sortOrder": 1}]
    assert client.put("/api/connections/groups/reorder", {"items": items}, format="json").status_code == 200
    assert [g["name"] for g in tree(client)["groups"]] == ["y", "x"]
    foreign = make_folder(make_user("poweruser"))
    items = [{"id": foreign.pk, "sortOrder": 9}]
    assert client.put("/api/connections/groups/reorder", {"items": items}, format="json").status_code == 400


# --- folders -------------------------------------------------------------------------------


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 201), ("admin", 201)])
def test_create_folder_by_role(client_as, role, status):
    response = client_as(role).post("/api/connections/groups", {"name": "Production", "parentId": None}, format="json")
    assert response.status_code == status
    if status == 201:
        body = response.json()
        assert body["id"].startswith("grp_") and body["name"] == "Production" and body["parentId"] is None


def test_nested_folder_and_rename(client_as):
    client = client_as("poweruser")
    parent = client.post("/api/connections/groups", {"name": "Prod"}, format="json").json()
    child = client.post("/api/connections/groups", {"name": "Web", "parentId": parent["id"]}, format="json").json()
    assert child["parentId"] == parent["id"]
    assert client.put(f"/api/connections/groups/{child['id']}", {"name": "Web servers"}, format="json").status_code == 200
    assert ConnectionGroup.objects.get(pk=child["id"]).name == "Web servers"


def test_moving_a_folder_under_itself_or_a_descendant_is_400(client_as):
    client = client_as("poweruser")
    top = make_folder(client.user, "top")
    middle = make_folder(client.user, "middle", parent=top)
    bottom = make_folder(client.user, "bottom", parent=middle)
    for target in (top, middle, bottom):
        response = client.put(f"/api/connections/groups/{top.pk}", {"parentId": target.pk}, format="json")
        assert response.status_code == 400 and "parentId" in response.json()["fields"]
    assert ConnectionGroup.objects.get(pk=top.pk).parent is None
    assert client.put(f"/api/connections/groups/{bottom.pk}", {"parentId": None}, format="json").status_code == 200


def test_folder_of_someone_else_is_404(client_as):
    foreign = make_folder(make_user("poweruser"))
    client = client_as("poweruser")
    assert client.put(f"/api/connections/groups/{foreign.pk}", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"/api/connections/groups/{foreign.pk}").status_code == 404
    assert client.post("/api/connections/groups", {"name": "x", "parentId": foreign.pk}, format="json").status_code == 400


def test_delete_folder_deletes_subfolders_and_connections(client_as):
    client = client_as("poweruser")
    top = make_folder(client.user)
    sub = make_folder(client.user, parent=top)
    make_connection(client.user, group=top)
    make_connection(client.user, group=sub)
    keep = make_connection(client.user)
    assert client.delete(f"/api/connections/groups/{top.pk}").json() == {"success": True}
    assert list(Connection.objects.values_list("pk", flat=True)) == [keep.pk]
    assert not ConnectionGroup.objects.exists()


def test_address_book_folder_is_not_editable_as_a_personal_folder(client_as):
    book = make_address_book_folder("prod", groups=["ops"])
    operator = client_as("poweruser", groups=["ops"])
    assert operator.put(f"/api/connections/groups/{book.pk}", {"name": "mine"}, format="json").status_code == 403
    assert operator.delete(f"/api/connections/groups/{book.pk}").status_code == 403


@pytest.mark.parametrize("body", [{"name": ""}, {"name": 3}, {"name": "x" * 201}, {"name": "x", "parentId": 5}])
def test_bad_folder_input_is_400(client_as, body):
    response = client_as("poweruser").post("/api/connections/groups", body, format="json")
    assert response.status_code == 400 and not ConnectionGroup.objects.exists()


def test_custom_role_without_create_cannot_make_folders(client_as):
    Role.objects.create(name="sharer", permissions=["connections.share"])
    assert client_as("sharer").post("/api/connections/groups", {"name": "x"}, format="json").status_code == 403
