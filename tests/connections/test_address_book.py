"""session-broker address book at /api/addressbook: folders by group, entries, merge on PUT."""

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from connections.models import Connection, ConnectionGroup, JumpHop
from tests.factories import make_address_book_folder, make_connection, make_user

pytestmark = pytest.mark.django_db

BASE = "/api/addressbook/folders"
ENTRY = {
    "name": "prod-db",
    "type": "ssh",
    "hostname": "db.internal.example.com",
    "port": 22,
    "username": "admin",
    "password": "secret",
    "jump_hosts": [{"hostname": "bastion.example.com", "port": 22, "username": "jump-user", "password": "jump-pass"}],
}


@pytest.fixture
def prod():
    folder = make_address_book_folder("production", groups=["engineering", "devops"])
    make_connection(None, "web-server-01", group=folder, host="10.0.1.50", password="pw")
    return folder


# --- folders -------------------------------------------------------------------------------


def test_folders_are_filtered_by_group(client_as, prod):
    make_address_book_folder("finance", groups=["finance"])
    make_address_book_folder("nobody")
    engineer = client_as("viewer", groups=["engineering"])
    assert [f["name"] for f in engineer.get(BASE).json()] == ["production"]
    assert client_as("viewer", groups=["marketing"]).get(BASE).json() == []
    assert {f["name"] for f in client_as("admin").get(BASE).json()} == {"production", "finance", "nobody"}


def test_folder_listing_shape(client_as, prod):
    folder = client_as("admin").get(BASE).json()[0]
    assert folder == {
        "scope": "shared",
        "name": "production",
        "allowed_groups": ["devops", "engineering"],
        "description": "",
    }


def test_anonymous_is_401(api_client):
    assert api_client.get(BASE).status_code == 401


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 403), ("admin", 201)])
def test_create_folder_by_role(client_as, role, status):
    body = {"scope": "shared", "name": "production", "allowed_groups": ["engineering"], "description": "Production servers"}
    response = client_as(role).post(BASE, body, format="json")
    assert response.status_code == status
    assert ConnectionGroup.objects.address_book().count() == (1 if status == 201 else 0)
    if status == 201:
        assert response.json()["allowed_groups"] == ["engineering"]


def test_duplicate_folder_is_409_but_other_scope_is_fine(client_as, prod):
    admin = client_as("admin")
    assert admin.post(BASE, {"scope": "shared", "name": "production"}, format="json").status_code == 409
    assert admin.post(BASE, {"scope": "instance", "name": "production"}, format="json").status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "global", "name": "x"},
        {"scope": "shared", "name": ""},
        {"scope": "shared", "name": "a/b"},
        {"scope": "shared", "name": "x", "allowed_groups": "engineering"},
        {"scope": "shared", "name": "x", "allowed_groups": [1]},
        {"scope": "shared", "name": "x" * 201},
    ],
)
def test_bad_folder_is_400(client_as, body):
    assert client_as("admin").post(BASE, body, format="json").status_code == 400
    assert not ConnectionGroup.objects.exists()


@pytest.mark.parametrize("name", [".", "..", "a/b", "/", "../production"])
def test_address_book_folder_cannot_be_named_a_path_step(client_as, name):
    response = client_as("admin").post(BASE, {"scope": "shared", "name": name}, format="json")
    assert response.status_code == 400 and "name" in response.json()["fields"]
    assert not ConnectionGroup.objects.exists()


@pytest.mark.parametrize("name", [".", "..", "a/b"])
def test_address_book_folder_cannot_be_renamed_to_a_path_step(prod, name):
    client = Client()
    client.force_login(make_user("admin"))
    url = reverse("admin:connections_connectiongroup_change", args=[quote(prod.pk)])
    form = {"name": name, "scope": "shared", "owner": "", "parent": "", "sort_order": 0, "description": ""}
    response = client.post(url, form)
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    prod.refresh_from_db()
    assert prod.name == "production"


def test_address_book_entry_with_a_denied_web_url_is_refused(client_as, prod):
    admin = client_as("admin")
    entry = {"name": "meta", "type": "web", "url": "http://169.254.169.254/latest/"}
    response = admin.post(f"{BASE}/shared/production/entries", entry, format="json")
    assert response.status_code == 400 and "url" in response.json()["fields"]
    assert not Connection.objects.filter(name="meta").exists()
    admin.post(f"{BASE}/shared/production/entries", {**entry, "url": "https://intranet.example/"}, format="json")
    response = admin.put(f"{BASE}/shared/production/entries/meta", {"url": "http://[fe80::1]/"}, format="json")
    assert response.status_code == 400 and "url" in response.json()["fields"]
    assert Connection.objects.get(name="meta").url == "https://intranet.example/"


def test_update_folder_groups_and_description(client_as, prod):
    admin = client_as("admin")
    response = admin.put(f"{BASE}/shared/production", {"allowed_groups": ["sre"], "description": "Prod"}, format="json")
    assert response.status_code == 200 and response.json()["allowed_groups"] == ["sre"]
    assert client_as("viewer", groups=["engineering"]).get(BASE).json() == []
    assert [f["name"] for f in client_as("viewer", groups=["sre"]).get(BASE).json()] == ["production"]


@pytest.mark.parametrize("role, status", [("operator", 403), ("poweruser", 403), ("admin", 204)])
def test_delete_folder_deletes_its_entries(client_as, prod, role, status):
    assert client_as(role, groups=["engineering"]).delete(f"{BASE}/shared/production").status_code == status
    assert Connection.objects.exists() is (status != 204)


def test_unknown_folder_or_scope_is_404(client_as):
    admin = client_as("admin")
    assert admin.put(f"{BASE}/shared/missing", {"description": "x"}, format="json").status_code == 404
    assert admin.get(f"{BASE}/galaxy/missing/entries").status_code == 404


# --- entries -------------------------------------------------------------------------------


def test_entries_need_folder_access(client_as, prod):
    assert client_as("operator", groups=["devops"]).get(f"{BASE}/shared/production/entries").status_code == 200
    assert client_as("operator", groups=["finance"]).get(f"{BASE}/shared/production/entries").status_code == 404


def test_entries_show_no_secret(client_as, prod):
    response = client_as("operator", groups=["devops"]).get(f"{BASE}/shared/production/entries")
    entry = response.json()[0]
    assert entry["name"] == "web-server-01" and entry["hostname"] == "10.0.1.50" and entry["type"] == "ssh"
    assert entry["has_password"] is True and "password" not in entry and "pw" not in response.content.decode().replace("prompt", "")


@pytest.mark.parametrize("role, status", [("operator", 403), ("poweruser", 403), ("admin", 201)])
def test_create_entry_by_role(client_as, prod, role, status):
    response = client_as(role, groups=["engineering"]).post(f"{BASE}/shared/production/entries", ENTRY, format="json")
    assert response.status_code == status
    assert Connection.objects.filter(name="prod-db").exists() is (status == 201)


def test_entry_fields_map_onto_the_connection(client_as, prod):
    body = {
        **ENTRY,
        "name": "fileserver",
        "type": "rdp",
        "hostname": "fileserver.corp.example.com",
        "port": 3389,
        "domain": "CORP.EXAMPLE.COM",
        "security": "nla",
        "auth_pkg": "kerberos",
        "kdc_url": "https://dc.corp.example.com/KdcProxy",
        "ignore_cert": True,
        "color_depth": 24,
        "disable_copy": True,
        "display_name": "File server",
        "prompt_credentials": True,
        "jump_hosts": [],
    }
    created = client_as("admin").post(f"{BASE}/shared/production/entries", body, format="json").json()
    for key in ("domain", "security", "auth_pkg", "kdc_url", "ignore_cert", "color_depth", "disable_copy", "display_name"):
        assert created[key] == body[key]
    connection = Connection.objects.get(name="fileserver")
    assert connection.owner is None and connection.group == prod and connection.skip_cert_validation
    assert connection.extra_config["domain"] == "CORP.EXAMPLE.COM"
    detail = client_as("admin").get(f"/api/connections/{connection.pk}").json()
    assert detail["extraConfig"]["security"] == "nla"  # the same entry through connection-manager


@pytest.mark.parametrize(
    "change",
    [
        {"type": "gopher"},
        {"port": 70000},
        {"hostname": "169.254.169.254"},
        {"name": "a/b"},
        {"security": "weird"},
        {"color_depth": 7},
        {"login_script": "../../etc/x"},
        {"jump_hosts": [{"hostname": "0xa9fea9fe", "username": "j"}]},
        {"private_key": "garbage"},
    ],
)
def test_bad_entry_is_400_and_saves_nothing(client_as, prod, change):
    response = client_as("admin").post(f"{BASE}/shared/production/entries", {**ENTRY, **change}, format="json")
    assert response.status_code == 400, response.content
    assert not Connection.objects.filter(name__in=["prod-db", "a/b"]).exists()


def test_duplicate_entry_is_409(client_as, prod):
    admin = client_as("admin")
    assert admin.post(f"{BASE}/shared/production/entries", {**ENTRY, "name": "web-server-01"}, format="json").status_code == 409


def test_put_with_an_incomplete_jump_host_is_400(client_as, prod):
    """PUT merges fields, but a jump host is replaced whole; one without a username answered 500."""
    admin = client_as("admin")
    admin.post(f"{BASE}/shared/production/entries", ENTRY, format="json")
    hops = [{"hostname": "bastion.example.com", "password": "other"}]
    response = admin.put(f"{BASE}/shared/production/entries/prod-db", {"jump_hosts": hops}, format="json")
    assert response.status_code == 400 and response.json()["error"].startswith("jump_hosts[0].username")
    assert [(h.username, h.password) for h in JumpHop.objects.all()] == [("jump-user", "jump-pass")]


def test_put_is_a_read_modify_write_merge(client_as, prod):
    admin = client_as("admin")
    admin.post(f"{BASE}/shared/production/entries", {**ENTRY, "domain": "CORP"}, format="json")
    hops = [
        {"hostname": "bastion.example.com", "username": "jump-user"},
        {"hostname": "gw.internal", "username": "gw", "password": "gw-pass"},
    ]
    response = admin.put(f"{BASE}/shared/production/entries/prod-db", {"username": "dba", "jump_hosts": hops}, format="json")
    assert response.status_code == 200
    entry = Connection.objects.get(name="prod-db")
    assert (entry.username, entry.password, entry.host) == ("dba", "secret", "db.internal.example.com")
    assert entry.extra_config == {"domain": "CORP"}
    assert [(h.host, h.password) for h in JumpHop.objects.filter(connection=entry).order_by("position")] == [
        ("bastion.example.com", "jump-pass"),
        ("gw.internal", "gw-pass"),
    ]
    admin.put(f"{BASE}/shared/production/entries/prod-db", {"password": "rotated", "disable_paste": True}, format="json")
    entry.refresh_from_db()
    assert entry.password == "rotated" and entry.extra_config == {"domain": "CORP", "disable_paste": True}


def test_bad_put_changes_nothing(client_as, prod):
    admin = client_as("admin")
    before = Connection.objects.values().get(name="web-server-01")
    response = admin.put(f"{BASE}/shared/production/entries/web-server-01", {"port": 0, "username": "x"}, format="json")
    assert response.status_code == 400
    assert Connection.objects.values().get(name="web-server-01") == before


@pytest.mark.parametrize("role, status", [("operator", 403), ("admin", 204)])
def test_delete_entry_by_role(client_as, prod, role, status):
    response = client_as(role, groups=["engineering"]).delete(f"{BASE}/shared/production/entries/web-server-01")
    assert response.status_code == status


def test_unknown_entry_is_404(client_as, prod):
    assert client_as("admin").delete(f"{BASE}/shared/production/entries/nope").status_code == 404


def test_entries_appear_in_the_members_connection_tree_for_use_only(client_as, prod):
    member = client_as("poweruser", groups=["engineering"])
    entry = Connection.objects.get(name="web-server-01")
    groups = {g["name"]: g for g in member.get("/api/connections").json()["groups"]}
    assert [c["id"] for c in groups["production"]["connections"]] == [entry.pk]
    assert member.put(f"/api/connections/{entry.pk}", {"name": "mine"}, format="json").status_code == 403
    assert member.get(f"/api/connections/{entry.pk}/session").status_code == 403
    assert member.delete(f"/api/connections/{entry.pk}").status_code == 403
