"""session-broker.txt sessions over HTTP: /api/sessions, its banner and share link, and opening a
session on an address-book entry or a saved connection. Every endpoint, each role, bad input."""

import json
import uuid
from dataclasses import asdict

import pytest
from django.db import connection as db
from rest_framework.test import APIClient

from accounts.choices import AuditAction
from accounts.models import AuditEvent, Role
from connections.models import Connection, JumpHop, Share
from sessions.models import Session
from sessions.services.sessions import route_for, share_digest, share_key_matches
from tests.factories import make_address_book_folder, make_connection, make_role, make_user, make_user_token

pytestmark = pytest.mark.django_db

SSH = {"session_type": "ssh", "hostname": "10.0.0.1", "port": 22, "username": "root", "password": "root-pw-123"}
SESSION_FIELDS = {
    "session_id",
    "session_type",
    "owner",
    "connection_id",
    "hostname",
    "port",
    "username",
    "jump_chain",
    "status",
    "status_message",
    "share_mode",
    "client_ip",
    "node",
    "bytes_in",
    "bytes_out",
    "channels",
    "created_at",
    "started_at",
    "ended_at",
    "last_activity",
    "client_url",
    "recording",
}


def make_session(owner, status="pending", key="share-key", **fields):
    """A session row saved directly, for tests that are not about opening one."""
    fields.setdefault("session_type", "ssh")
    fields.setdefault("host", "10.0.0.1")
    fields.setdefault("port", 22)
    fields.setdefault("username", "root")
    fields.setdefault("secrets", json.dumps({"password": "pw-in-secrets", "hops": []}))
    return Session.objects.create(owner=owner, status=status, share_digest=share_digest(key), **fields)


def raw_sessions():
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM pam_sessions_session")
        return repr(cursor.fetchall())


def share_key_of(body):
    path, _, key = body["share_url"].partition("/join#key=")
    assert path == body["client_url"] and key
    return key


def assert_bad_request(response, field):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"].startswith(field), body
    assert Session.objects.count() == 0


# --- POST /api/sessions ---------------------------------------------------------------------


def test_create_needs_authentication(api_client):
    assert api_client.post("/api/sessions", SSH, format="json").status_code == 401
    assert Session.objects.count() == 0


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 201), ("admin", 201)])
def test_create_by_role(client_as, role, status):
    response = client_as(role).post("/api/sessions", SSH, format="json")
    assert response.status_code == status
    assert Session.objects.count() == (1 if status == 201 else 0)


def test_create_from_a_browser_session_needs_the_csrf_token():
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user("poweruser"))
    assert client.post("/api/sessions", SSH, format="json").status_code == 403
    assert Session.objects.count() == 0


def test_token_capped_at_operator_cannot_create(api_client):
    _, token = make_user_token(make_user("poweruser"), max_role=Role.objects.get(pk="operator"))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.post("/api/sessions", SSH, format="json").status_code == 403
    assert Session.objects.count() == 0


def test_create_returns_documented_keys(client_as):
    client = client_as("poweruser")
    body = client.post("/api/sessions", SSH, format="json").json()
    assert set(body) == {"session_id", "client_url", "share_url"}
    session = Session.objects.get()
    assert body["session_id"] == str(session.pk)
    assert body["client_url"] == f"/client/{session.pk}"
    assert body["share_url"].startswith(f"/client/{session.pk}/join#key=")
    assert share_key_matches(session, share_key_of(body))


def test_created_session_records_owner_target_and_audit_event(client_as):
    client = client_as("poweruser")
    client.post("/api/sessions", SSH, format="json", REMOTE_ADDR="192.0.2.7")
    session = Session.objects.get()
    assert (session.owner, session.session_type, session.host, session.port, session.username) == (
        client.user, "ssh", "10.0.0.1", 22, "root"
    )
    assert session.status == "pending" and session.client_ip == "192.0.2.7"
    event = AuditEvent.objects.get(action=AuditAction.SESSION_CREATED)
    assert event.user == client.user and event.object_name == str(session.pk)


def test_port_defaults_to_the_session_types_port(client_as):
    client = client_as("poweruser")
    client.post("/api/sessions", {"session_type": "telnet", "hostname": "10.0.0.1"}, format="json")
    client.post("/api/sessions", {"session_type": "ssh", "hostname": "10.0.0.2", "port": None}, format="json")
    assert dict(Session.objects.values_list("host", "port")) == {"10.0.0.1": 23, "10.0.0.2": 22}


def test_generate_keypair_returns_public_key_as_banner_text(client_as):
    client = client_as("poweruser")
    body = client.post(
        "/api/sessions", {"session_type": "ssh", "hostname": "10.0.0.1", "username": "root", "generate_keypair": True},
        format="json",
    ).json()
    assert body["banner_text"].startswith("ssh-ed25519 ")
    session = Session.objects.get()
    assert session.public_key == body["banner_text"]
    assert route_for(session).target.private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert "PRIVATE KEY" not in json.dumps(body)


def test_generate_keypair_is_for_ssh_only(client_as):
    response = client_as("poweruser").post(
        "/api/sessions", {"session_type": "telnet", "hostname": "10.0.0.1", "generate_keypair": True}, format="json"
    )
    assert_bad_request(response, "generate_keypair")


def test_every_documented_field_is_accepted(client_as, ssh_key):
    client = client_as("poweruser")
    body = {
        **SSH,
        "private_key": ssh_key,
        "generate_keypair": False,
        "jump_hosts": [
            {"hostname": "10.0.9.1", "port": 2222, "username": "hop1", "password": "hop-pw-1"},
            {"hostname": "10.0.9.2", "username": "hop2", "private_key": ssh_key},
        ],
        "width": 1920,
        "height": 1080,
        "dpi": 96,
        "banner": "Authorized use only",
        "enable_drive": True,
        "disable_copy": True,
        "disable_paste": True,
        "share_mode": "read-write",
    }
    response = client.post("/api/sessions", body, format="json")
    assert response.status_code == 201, response.content
    session = Session.objects.get()
    assert (session.width, session.height, session.dpi) == (1920, 1080, 96)
    assert session.banner == "Authorized use only"
    assert session.enable_drive and session.disable_copy and session.disable_paste
    assert session.share_mode == "read-write"
    assert session.jump_chain == ["hop1@10.0.9.1:2222", "hop2@10.0.9.2:22"]
    route = route_for(session)
    assert route.target.password == "root-pw-123" and route.target.private_key == ssh_key
    assert [(h.host, h.username, h.password) for h in route.jumps] == [
        ("10.0.9.1", "hop1", "hop-pw-1"),
        ("10.0.9.2", "hop2", ""),
    ]
    assert route.jumps[1].private_key == ssh_key


def test_banner_and_flags_default_off(client_as):
    client_as("poweruser").post("/api/sessions", SSH, format="json")
    session = Session.objects.get()
    assert session.banner == "" and session.public_key == ""
    assert not (session.enable_drive or session.disable_copy or session.disable_paste)
    assert session.share_mode == "read-only" and session.jump_chain == []


def test_legacy_jump_fields_become_one_hop(client_as, ssh_key):
    client = client_as("poweruser")
    legacy = {
        "jump_host": "10.0.9.1",
        "jump_port": 2200,
        "jump_username": "legacy",
        "jump_password": "legacy-pw",
        "jump_private_key": ssh_key,
    }
    assert client.post("/api/sessions", {**SSH, **legacy}, format="json").status_code == 201
    session = Session.objects.get()
    assert session.jump_chain == ["legacy@10.0.9.1:2200"]
    (hop,) = route_for(session).jumps
    assert (hop.host, hop.port, hop.username, hop.password, hop.private_key) == (
        "10.0.9.1", 2200, "legacy", "legacy-pw", ssh_key
    )


def test_legacy_jump_port_defaults_to_22(client_as):
    client = client_as("poweruser")
    client.post("/api/sessions", {**SSH, "jump_host": "10.0.9.1", "jump_username": "j"}, format="json")
    assert Session.objects.get().jump_chain == ["j@10.0.9.1:22"]


def test_jump_hosts_win_over_legacy_fields(client_as):
    client = client_as("poweruser")
    body = {
        **SSH,
        "jump_hosts": [{"hostname": "10.0.9.5", "username": "new"}],
        "jump_host": "10.0.9.1",
        "jump_username": "legacy",
        "jump_password": "legacy-pw",
    }
    assert client.post("/api/sessions", body, format="json").status_code == 201
    session = Session.objects.get()
    assert session.jump_chain == ["new@10.0.9.5:22"]
    assert "legacy-pw" not in json.dumps(asdict(route_for(session)))


BAD_CREATE = [
    ({"session_type": "gopher"}, "session_type"),
    ({"session_type": 1}, "session_type"),
    ({"session_type": None}, "session_type"),
    ({"port": 0}, "port"),
    ({"port": 65536}, "port"),
    ({"port": -1}, "port"),
    ({"port": "22"}, "port"),
    ({"port": 22.5}, "port"),
    ({"port": True}, "port"),
    ({"hostname": "x" * 1_000_000}, "hostname"),
    ({"hostname": "a b"}, "hostname"),
    ({"hostname": ""}, "hostname"),
    ({"hostname": 10}, "hostname"),
    ({"username": "u" * 1_000_000}, "username"),
    ({"username": 5}, "username"),
    ({"password": "p" * 1_000_000}, "password"),
    ({"password": 123}, "password"),
    ({"private_key": "not a key"}, "private_key"),
    ({"generate_keypair": "yes"}, "generate_keypair"),
    ({"width": 5}, "width"),
    ({"height": "1080"}, "height"),
    ({"dpi": 100_000}, "dpi"),
    ({"banner": "b" * 1_000_000}, "banner"),
    ({"enable_drive": "true"}, "enable_drive"),
    ({"disable_copy": 1}, "disable_copy"),
    ({"share_mode": "everyone"}, "share_mode"),
    ({"jump_hosts": [{"hostname": "10.0.9.1"}]}, "jump_hosts"),
    ({"jump_hosts": [{"username": "j"}]}, "jump_hosts"),
    ({"jump_hosts": [{"hostname": "10.0.9.1", "username": "j", "port": 0}]}, "jump_hosts"),
    ({"jump_hosts": [{"hostname": "10.0.9.1", "username": "j", "private_key": "junk"}]}, "jump_hosts"),
    ({"jump_hosts": [{"hostname": f"10.0.9.{i}", "username": "j"} for i in range(9)]}, "jump_hosts"),
    ({"jump_hosts": {"hostname": "10.0.9.1", "username": "j"}}, "jump_hosts"),
    ({"jump_host": "10.0.9.1"}, "jump_username"),
    ({"jump_host": "10.0.9.1", "jump_username": "j", "jump_port": 70000}, "jump_port"),
    ({"hostname": "169.254.169.254"}, "hostname"),
    ({"hostname": "0xa9fea9fe"}, "hostname"),
    ({"hostname": "::ffff:169.254.169.254"}, "hostname"),
    ({"jump_hosts": [{"hostname": "169.254.169.254", "username": "j"}]}, "jump_hosts[0].hostname"),
    ({"jump_hosts": [{"hostname": "10.0.9.1", "username": "j"}, {"hostname": "0xa9fea9fe", "username": "j"}]},
     "jump_hosts[1].hostname"),
    ({"jump_hosts": [{"hostname": "::ffff:169.254.169.254", "username": "j"}]}, "jump_hosts[0].hostname"),
    ({"jump_host": "169.254.169.254", "jump_username": "j"}, "jump_hosts[0].hostname"),
    ({"hostname": None}, "hostname"),
    ({"jump_hosts": None}, "jump_hosts"),
    ({"session_type": "telnet", "jump_hosts": [{"hostname": "10.0.9.1", "username": "j"}]}, "jump_hosts"),
]


@pytest.mark.parametrize("override, field", BAD_CREATE)
def test_create_rejects_bad_input(client_as, override, field):
    response = client_as("poweruser").post("/api/sessions", {**SSH, **override}, format="json")
    assert_bad_request(response, field)


def test_create_without_hostname_is_rejected(client_as):
    body = {k: v for k, v in SSH.items() if k != "hostname"}
    assert_bad_request(client_as("poweruser").post("/api/sessions", body, format="json"), "hostname")


def test_create_without_session_type_is_rejected(client_as):
    body = {k: v for k, v in SSH.items() if k != "session_type"}
    assert_bad_request(client_as("poweruser").post("/api/sessions", body, format="json"), "session_type")


@pytest.mark.parametrize("session_type", ["rdp", "vnc", "web"])
def test_graphical_session_types_are_not_available_yet(client_as, session_type):
    response = client_as("poweruser").post(
        "/api/sessions", {**SSH, "session_type": session_type, "url": "https://example.com"}, format="json"
    )
    assert_bad_request(response, "session_type")
    assert "not available yet" in response.json()["error"]


def test_passphrase_protected_key_is_rejected(client_as, encrypted_ssh_key):
    response = client_as("poweruser").post("/api/sessions", {**SSH, "private_key": encrypted_ssh_key}, format="json")
    assert_bad_request(response, "private_key")


def test_passphrase_protected_jump_key_is_rejected(client_as, encrypted_ssh_key):
    hop = {"hostname": "10.0.9.1", "username": "j", "private_key": encrypted_ssh_key}
    response = client_as("poweruser").post("/api/sessions", {**SSH, "jump_hosts": [hop]}, format="json")
    assert_bad_request(response, "jump_hosts[0].private_key")


@pytest.mark.parametrize("raw", [b"{", b'{"session_type": "ssh",}', b"\xff\xfe", b""])
def test_create_rejects_malformed_json(client_as, raw):
    response = client_as("poweruser").post("/api/sessions", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]
    assert Session.objects.count() == 0


@pytest.mark.parametrize("body", [[SSH], "ssh", 42, None])
def test_create_rejects_a_body_that_is_not_an_object(client_as, body):
    response = client_as("poweruser").post("/api/sessions", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]
    assert Session.objects.count() == 0


def test_credentials_never_appear_in_responses(client_as, ssh_key):
    client = client_as("poweruser")
    hop = {"hostname": "10.0.9.1", "username": "j", "password": "hop-pw-456"}
    created = client.post("/api/sessions", {**SSH, "private_key": ssh_key, "jump_hosts": [hop]}, format="json")
    session_id = created.json()["session_id"]
    texts = [
        created.content.decode(),
        client.get("/api/sessions").content.decode(),
        client.get(f"/api/sessions/{session_id}").content.decode(),
    ]
    for text in texts:
        for secret in ("root-pw-123", "hop-pw-456", ssh_key.splitlines()[1]):
            assert secret not in text
        assert "secrets" not in text and "share_digest" not in text


def test_credentials_are_encrypted_at_rest(client_as, ssh_key):
    client = client_as("poweruser")
    hop = {"hostname": "10.0.9.1", "username": "j", "password": "hop-pw-456"}
    client.post("/api/sessions", {**SSH, "private_key": ssh_key, "jump_hosts": [hop]}, format="json")
    dumped = raw_sessions()
    for secret in ("root-pw-123", "hop-pw-456", ssh_key.splitlines()[1]):
        assert secret not in dumped
    assert Session.objects.get().secrets  # kept (encrypted) until the target is reached


def test_ephemeral_private_key_is_encrypted_at_rest(client_as):
    client = client_as("poweruser")
    client.post("/api/sessions", {**SSH, "generate_keypair": True}, format="json")
    private_key = route_for(Session.objects.get()).target.private_key
    assert private_key.splitlines()[1] not in raw_sessions()


def test_share_key_is_stored_as_a_digest(client_as):
    body = client_as("poweruser").post("/api/sessions", SSH, format="json").json()
    key = share_key_of(body)
    assert key not in raw_sessions()
    assert Session.objects.get().share_digest == share_digest(key)


# --- GET /api/sessions, GET /api/sessions/{id} ------------------------------------------------


def test_listing_needs_authentication(api_client):
    assert api_client.get("/api/sessions").status_code == 401


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 200), ("poweruser", 200), ("admin", 200)])
def test_list_by_role(client_as, role, status):
    assert client_as(role).get("/api/sessions").status_code == status


def test_operator_lists_only_own_sessions(client_as):
    client = client_as("operator")
    mine = make_session(client.user)
    make_session(make_user("operator"))
    make_session(make_user("poweruser"))
    assert [s["session_id"] for s in client.get("/api/sessions").json()] == [str(mine.pk)]


def test_poweruser_lists_only_own_sessions(client_as):
    client = client_as("poweruser")
    make_session(make_user("operator"))
    assert client.get("/api/sessions").json() == []


def test_admin_lists_every_session(admin_client):
    ids = {str(make_session(make_user(role)).pk) for role in ("operator", "poweruser", "admin")}
    assert {s["session_id"] for s in admin_client.get("/api/sessions").json()} == ids


def test_live_filter_lists_only_open_sessions(client_as):
    client = client_as("operator")
    live = {str(make_session(client.user, status=status).pk) for status in ("pending", "connecting", "active")}
    for status in ("ended", "terminated", "failed", "lost"):
        make_session(client.user, status=status)
    assert {s["session_id"] for s in client.get("/api/sessions?live=true").json()} == live
    assert len(client.get("/api/sessions").json()) == 7
    assert len(client.get("/api/sessions?live=false").json()) == 7


def test_list_is_newest_first(client_as):
    client = client_as("operator")
    first, second = make_session(client.user), make_session(client.user)
    assert [s["session_id"] for s in client.get("/api/sessions").json()] == [str(second.pk), str(first.pk)]


def test_list_query_count_does_not_grow(admin_client, django_assert_max_num_queries):
    for _ in range(30):
        make_session(make_user("operator"))
    with django_assert_max_num_queries(6):
        assert len(admin_client.get("/api/sessions").json()) == 30


def test_list_is_paged_with_limit_and_offset(client_as):
    client = client_as("operator")
    made = [str(make_session(client.user).pk) for _ in range(7)][::-1]  # newest first
    first = client.get("/api/sessions?limit=3")
    assert [s["session_id"] for s in first.json()] == made[:3]
    assert first["X-Total-Count"] == "7" and 'rel="next"' in first["Link"] and "offset=3" in first["Link"]
    last = client.get("/api/sessions?limit=3&offset=6")
    assert [s["session_id"] for s in last.json()] == made[6:]
    assert 'rel="next"' not in last["Link"] and 'rel="prev"' in last["Link"]


def test_list_without_limit_answers_the_first_200(admin_client, django_assert_max_num_queries):
    owner = make_user("operator")
    Session.objects.bulk_create(
        Session(owner=owner, session_type="ssh", host="10.0.0.1", port=22, status="ended") for _ in range(230)
    )
    with django_assert_max_num_queries(6):
        response = admin_client.get("/api/sessions")
    assert len(response.json()) == 200 and response["X-Total-Count"] == "230"
    with django_assert_max_num_queries(6):
        assert len(admin_client.get("/api/sessions?limit=5000").json()) == 230  # at most 1000 a page


@pytest.mark.parametrize("query", ["limit=abc", "limit=-1", "offset=-5", "offset=x", "limit=0"])
def test_list_with_a_bad_page_falls_back_to_the_defaults(client_as, query):
    client = client_as("operator")
    make_session(client.user)
    response = client.get(f"/api/sessions?{query}")
    assert response.status_code == 200 and len(response.json()) == 1


def test_detail_has_documented_fields_and_no_secret(client_as):
    client = client_as("operator")
    session = make_session(client.user, jump_chain=["j@10.0.9.1:22"], client_ip="192.0.2.1")
    body = client.get(f"/api/sessions/{session.pk}").json()
    assert set(body) == SESSION_FIELDS
    assert body["session_id"] == str(session.pk) and body["owner"] == client.user.email
    assert body["hostname"] == "10.0.0.1" and body["port"] == 22 and body["username"] == "root"
    assert body["client_url"] == f"/client/{session.pk}" and body["recording"] is None
    assert body["jump_chain"] == ["j@10.0.9.1:22"] and body["connection_id"] is None
    text = json.dumps(body)
    assert "pw-in-secrets" not in text and session.share_digest not in text


def test_detail_names_the_connection(client_as):
    client = client_as("operator")
    connection = make_connection(make_user("poweruser"))
    session = make_session(client.user, connection=connection)
    assert client.get(f"/api/sessions/{session.pk}").json()["connection_id"] == connection.pk


@pytest.mark.parametrize("role", ["operator", "poweruser"])
def test_others_session_detail_is_not_found(client_as, role):
    session = make_session(make_user("operator"))
    assert client_as(role).get(f"/api/sessions/{session.pk}").status_code == 404


def test_admin_reads_any_session(admin_client):
    session = make_session(make_user("operator"))
    assert admin_client.get(f"/api/sessions/{session.pk}").json()["session_id"] == str(session.pk)


@pytest.mark.parametrize("session_id", [str(uuid.uuid4()), "-" * 36, "not-a-uuid"])
def test_unknown_session_is_not_found(client_as, session_id):
    response = client_as("operator").get(f"/api/sessions/{session_id}")
    assert response.status_code == 404
    assert response.json()["error"]


def test_viewer_cannot_read_a_session(client_as):
    client = client_as("viewer")
    session = make_session(client.user)
    assert client.get(f"/api/sessions/{session.pk}").status_code == 403


# --- DELETE /api/sessions/{id} --------------------------------------------------------------


def test_terminate_needs_authentication(api_client):
    session = make_session(make_user("operator"))
    assert api_client.delete(f"/api/sessions/{session.pk}").status_code == 401
    session.refresh_from_db()
    assert session.status == "pending"


def test_owner_terminates_own_session(client_as):
    client = client_as("operator")
    session = make_session(client.user, status="active")
    response = client.delete(f"/api/sessions/{session.pk}", REMOTE_ADDR="192.0.2.9")
    assert response.status_code == 200
    assert response.json()["status"] == "terminated"
    session.refresh_from_db()
    assert session.status == "terminated" and session.ended_by == client.user and session.ended_at
    assert session.secrets == ""
    event = AuditEvent.objects.get(action=AuditAction.SESSION_TERMINATED)
    assert event.user == client.user and event.object_name == str(session.pk) and event.ip_addr == "192.0.2.9"


@pytest.mark.parametrize("role", ["operator", "poweruser"])
def test_others_cannot_terminate_a_session(client_as, role):
    session = make_session(make_user("operator"), status="active")
    assert client_as(role).delete(f"/api/sessions/{session.pk}").status_code == 404
    session.refresh_from_db()
    assert session.status == "active" and session.secrets


def test_viewer_cannot_terminate(client_as):
    client = client_as("viewer")
    session = make_session(client.user)
    assert client.delete(f"/api/sessions/{session.pk}").status_code == 403
    session.refresh_from_db()
    assert session.status == "pending"


def test_role_that_may_list_but_not_terminate_cannot_end_own_session(client_as):
    make_role("session-lister", ["sessions.view"])
    client = client_as("session-lister")
    session = make_session(client.user, status="active")
    assert client.get(f"/api/sessions/{session.pk}").status_code == 200
    assert client.delete(f"/api/sessions/{session.pk}").status_code == 403
    session.refresh_from_db()
    assert session.status == "active"


def test_admin_terminates_anyones_session(admin_client):
    session = make_session(make_user("operator"), status="active")
    assert admin_client.delete(f"/api/sessions/{session.pk}").status_code == 200
    session.refresh_from_db()
    assert session.status == "terminated" and session.ended_by == admin_client.user


def test_terminating_twice_is_harmless(client_as):
    client = client_as("operator")
    session = make_session(client.user, status="active")
    client.delete(f"/api/sessions/{session.pk}")
    ended_at = Session.objects.get().ended_at
    second = client.delete(f"/api/sessions/{session.pk}")
    assert second.status_code == 200 and second.json()["status"] == "terminated"
    assert Session.objects.get().ended_at == ended_at
    assert AuditEvent.objects.filter(action=AuditAction.SESSION_TERMINATED).count() == 1


@pytest.mark.parametrize("status", ["ended", "failed", "lost"])
def test_finished_session_stays_as_it_was(client_as, status):
    client = client_as("operator")
    session = make_session(client.user, status=status, status_message="Closed by the target.", secrets="")
    response = client.delete(f"/api/sessions/{session.pk}")
    assert response.status_code == 200 and response.json()["status"] == status
    session.refresh_from_db()
    assert session.status == status and session.ended_by is None
    assert session.status_message == "Closed by the target."
    assert not AuditEvent.objects.filter(action=AuditAction.SESSION_TERMINATED).exists()


# --- GET /api/sessions/{id}/banner -----------------------------------------------------------


def test_banner_with_the_share_key_needs_no_authentication(api_client):
    session = make_session(make_user("poweruser"), key="right-key", banner="Authorized use only",
                           public_key="ssh-ed25519 AAAA pam-ephemeral")
    response = api_client.get(f"/api/sessions/{session.pk}/banner", HTTP_X_SHARE_KEY="right-key")
    assert response.status_code == 200
    assert response.json() == {"banner_text": "Authorized use only", "public_key": "ssh-ed25519 AAAA pam-ephemeral"}


def test_banner_of_an_ephemeral_keypair_session_is_its_public_key(client_as, api_client):
    body = client_as("poweruser").post("/api/sessions", {**SSH, "generate_keypair": True}, format="json").json()
    banner = api_client.get(f"/api/sessions/{body['session_id']}/banner", HTTP_X_SHARE_KEY=share_key_of(body)).json()
    assert banner["banner_text"] == banner["public_key"] == body["banner_text"]


@pytest.mark.parametrize("header", [{}, {"HTTP_X_SHARE_KEY": ""}, {"HTTP_X_SHARE_KEY": "wrong-key"},
                                    {"HTTP_X_SHARE_KEY": "right-ke"}, {"HTTP_X_OTHER": "right-key"}])
def test_banner_without_the_right_key_is_not_found(api_client, header):
    session = make_session(make_user("poweruser"), key="right-key", banner="hello")
    response = api_client.get(f"/api/sessions/{session.pk}/banner", **header)
    assert response.status_code == 404
    assert "hello" not in response.content.decode()


def test_banner_with_another_sessions_key_is_not_found(api_client):
    make_session(make_user("poweruser"), key="key-of-a")
    other = make_session(make_user("poweruser"), key="key-of-b", banner="b")
    assert api_client.get(f"/api/sessions/{other.pk}/banner", HTTP_X_SHARE_KEY="key-of-a").status_code == 404


@pytest.mark.parametrize("session_id", [str(uuid.uuid4()), "-" * 36, "g" * 36])
def test_banner_of_an_unknown_session_is_not_found(api_client, session_id):
    assert api_client.get(f"/api/sessions/{session_id}/banner", HTTP_X_SHARE_KEY="k").status_code == 404


def test_banner_key_is_not_a_credential_for_the_session(api_client):
    session = make_session(make_user("poweruser"), key="right-key")
    assert api_client.get(f"/api/sessions/{session.pk}?key=right-key").status_code == 401
    assert api_client.delete(f"/api/sessions/{session.pk}?key=right-key").status_code == 401
    assert api_client.get(f"/api/sessions/{session.pk}", HTTP_X_SHARE_KEY="right-key").status_code == 401


def test_banner_refuses_a_share_key_in_the_url(api_client):
    """A key in a query string lands in every access log on the way: refused, whether right or not."""
    session = make_session(make_user("poweruser"), key="right-key", banner="hello")
    response = api_client.get(f"/api/sessions/{session.pk}/banner?key=right-key")
    assert response.status_code == 400
    assert "X-Share-Key" in response.json()["error"] and "hello" not in response.content.decode()


# --- POST /api/sessions/{id}/share -----------------------------------------------------------


def test_owner_gets_a_new_share_link_and_the_old_one_stops_working(client_as):
    client = client_as("poweruser")
    created = client.post("/api/sessions", SSH, format="json").json()
    old_key = share_key_of(created)
    response = client.post(f"/api/sessions/{created['session_id']}/share", {"share_mode": "read-write"}, format="json")
    assert response.status_code == 200
    body = response.json()
    new_key = share_key_of({**body, "client_url": created["client_url"]})
    assert new_key != old_key
    assert body["share_mode"] == "read-write"
    session = Session.objects.get()
    assert session.share_mode == "read-write"
    assert share_key_matches(session, new_key) and not share_key_matches(session, old_key)


def test_share_without_a_mode_keeps_the_mode(client_as):
    client = client_as("operator")
    session = make_session(client.user, share_mode="read-write")
    body = client.post(f"/api/sessions/{session.pk}/share", {}, format="json").json()
    assert body["share_mode"] == "read-write"
    session.refresh_from_db()
    assert session.share_mode == "read-write" and not share_key_matches(session, "share-key")


@pytest.mark.parametrize("role, status", [("operator", 404), ("poweruser", 404), ("admin", 403)])
def test_only_the_owner_shares_a_session(client_as, role, status):
    session = make_session(make_user("operator"), key="original")
    assert client_as(role).post(f"/api/sessions/{session.pk}/share", {}, format="json").status_code == status
    session.refresh_from_db()
    assert share_key_matches(session, "original")


def test_viewer_cannot_share(client_as):
    client = client_as("viewer")
    session = make_session(client.user, key="original")
    assert client.post(f"/api/sessions/{session.pk}/share", {}, format="json").status_code == 403


def test_share_rejects_an_unknown_mode(client_as):
    client = client_as("operator")
    session = make_session(client.user, key="original")
    response = client.post(f"/api/sessions/{session.pk}/share", {"share_mode": "everyone"}, format="json")
    assert response.status_code == 400 and response.json()["error"].startswith("share_mode")
    session.refresh_from_db()
    assert share_key_matches(session, "original") and session.share_mode == "read-only"


# --- POST /api/addressbook/folders/{scope}/{folder}/entries/{entry}/connect -------------------


@pytest.fixture
def book():
    """An address-book folder for the group "ops", with an entry holding a stored password."""
    folder = make_address_book_folder("prod", groups=["ops"])
    entry = make_connection(None, "web-01", group=folder, host="10.0.0.5", username="deploy", password="stored-pw")
    return folder, entry


ENTRY_URL = "/api/addressbook/folders/shared/prod/entries/web-01/connect"


def test_address_book_connect_needs_authentication(api_client, book):
    assert api_client.post(ENTRY_URL, {}, format="json").status_code == 401


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 201), ("poweruser", 201), ("admin", 201)])
def test_address_book_connect_by_role(client_as, book, role, status):
    response = client_as(role, groups=["ops"]).post(ENTRY_URL, {}, format="json")
    assert response.status_code == status
    assert Session.objects.count() == (1 if status == 201 else 0)


def test_address_book_connect_returns_documented_keys(client_as, book):
    client = client_as("operator", groups=["ops"])
    body = client.post(ENTRY_URL, {}, format="json").json()
    assert set(body) == {"session_id", "client_url", "share_url"}
    session = Session.objects.get()
    assert body["client_url"] == f"/client/{session.pk}" and share_key_matches(session, share_key_of(body))
    assert (session.owner, session.connection, session.host, session.port, session.username) == (
        client.user, book[1], "10.0.0.5", 22, "deploy"
    )
    assert route_for(session).target.password == "stored-pw"


def test_address_book_connect_does_not_copy_stored_credentials(client_as, book):
    client_as("operator", groups=["ops"]).post(ENTRY_URL, {}, format="json")
    assert "stored-pw" not in json.dumps(Session.objects.get().secrets)


def test_address_book_connect_without_group_access_is_not_found(client_as, book):
    response = client_as("operator", groups=["others"]).post(ENTRY_URL, {}, format="json")
    assert response.status_code == 404
    assert Session.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "/api/addressbook/folders/shared/prod/entries/nope/connect",
        "/api/addressbook/folders/shared/nope/entries/web-01/connect",
        "/api/addressbook/folders/instance/prod/entries/web-01/connect",
        "/api/addressbook/folders/galaxy/prod/entries/web-01/connect",
    ],
)
def test_address_book_connect_to_unknown_entry_is_not_found(client_as, book, url):
    assert client_as("operator", groups=["ops"]).post(url, {}, format="json").status_code == 404


@pytest.mark.parametrize("entry_fields", [{"prompt_credentials": True}, {"password": ""}])
def test_entry_needing_credentials_refuses_without_a_password(client_as, book, entry_fields):
    Connection.objects.filter(pk=book[1].pk).update(**entry_fields)
    response = client_as("operator", groups=["ops"]).post(ENTRY_URL, {}, format="json")
    assert_bad_request(response, "password")


@pytest.mark.parametrize("entry_fields", [{"prompt_credentials": True}, {"password": ""}])
def test_prompted_credentials_are_for_the_session_only(client_as, book, entry_fields):
    Connection.objects.filter(pk=book[1].pk).update(**entry_fields)
    before = Connection.objects.get(pk=book[1].pk)
    client = client_as("operator", groups=["ops"])
    response = client.post(ENTRY_URL, {"username": "jdoe", "password": "typed-pw-789"}, format="json")
    assert response.status_code == 201
    assert "typed-pw-789" not in response.content.decode()
    entry = Connection.objects.get(pk=book[1].pk)
    assert (entry.username, entry.password) == (before.username, before.password) == ("deploy", before.password)
    assert "typed-pw-789" not in raw_sessions()
    session = Session.objects.get()
    assert session.username == "jdoe"
    assert json.loads(session.secrets)["password"] == "typed-pw-789"
    assert route_for(session).target.password == "typed-pw-789"


def test_prompted_password_replaces_a_stored_key(client_as, book, ssh_key):
    Connection.objects.filter(pk=book[1].pk).update(prompt_credentials=True)
    entry = Connection.objects.get(pk=book[1].pk)
    entry.private_key = ssh_key
    entry.save(update_fields=["private_key"])
    client_as("operator", groups=["ops"]).post(ENTRY_URL, {"password": "typed"}, format="json")
    target = route_for(Session.objects.get()).target
    assert target.password == "typed" and not target.private_key


def test_entry_with_a_stored_key_needs_no_password(client_as, book, ssh_key):
    entry = Connection.objects.get(pk=book[1].pk)
    entry.password, entry.private_key = "", ssh_key
    entry.save(update_fields=["password", "private_key"])
    assert client_as("operator", groups=["ops"]).post(ENTRY_URL, {}, format="json").status_code == 201


def test_address_book_connect_overrides_display_and_banner(client_as, book):
    client = client_as("operator", groups=["ops"])
    body = {"width": 1920, "height": 1080, "dpi": 120, "banner": "Custom banner", "domain": "CORP"}
    assert client.post(ENTRY_URL, body, format="json").status_code == 201
    session = Session.objects.get()
    assert (session.width, session.height, session.dpi, session.banner) == (1920, 1080, 120, "Custom banner")


def test_entry_display_name_is_the_default_banner(client_as, book):
    Connection.objects.filter(pk=book[1].pk).update(display_name="Web Server 01")
    client_as("operator", groups=["ops"]).post(ENTRY_URL, {}, format="json")
    assert "Web Server 01" in Session.objects.get().banner


@pytest.mark.parametrize(
    "body, field",
    [
        ({"width": "1920"}, "width"),
        ({"height": 0}, "height"),
        ({"dpi": True}, "dpi"),
        ({"password": "p" * 1_000_000}, "password"),
        ({"username": "u" * 1_000_000}, "username"),
        ({"banner": 5}, "banner"),
    ],
)
def test_address_book_connect_rejects_bad_overrides(client_as, book, body, field):
    response = client_as("operator", groups=["ops"]).post(ENTRY_URL, body, format="json")
    assert_bad_request(response, field)


def test_address_book_connect_rejects_a_non_object_body(client_as, book):
    response = client_as("operator", groups=["ops"]).post(ENTRY_URL, "[1]", content_type="application/json")
    assert response.status_code == 400 and Session.objects.count() == 0


@pytest.mark.parametrize("protocol", ["rdp", "vnc", "smb", "ftp"])
def test_entry_of_a_protocol_without_sessions_is_refused(client_as, book, protocol):
    Connection.objects.filter(pk=book[1].pk).update(protocol=protocol)
    response = client_as("operator", groups=["ops"]).post(ENTRY_URL, {}, format="json")
    assert response.status_code == 400
    assert Session.objects.count() == 0


def test_telnet_entry_with_jump_hosts_is_refused(client_as, book):
    Connection.objects.filter(pk=book[1].pk).update(protocol="telnet", port=23)
    JumpHop.objects.create(connection=book[1], position=0, host="10.0.9.1", username="j")
    response = client_as("operator", groups=["ops"]).post(ENTRY_URL, {}, format="json")
    assert_bad_request(response, "jump_hosts")


def test_telnet_entry_opens_a_telnet_session(client_as, book):
    Connection.objects.filter(pk=book[1].pk).update(protocol="telnet", port=None)
    assert client_as("operator", groups=["ops"]).post(ENTRY_URL, {}, format="json").status_code == 201
    session = Session.objects.get()
    assert (session.session_type, session.port) == ("telnet", 23)


def test_deny_listed_entry_is_refused(client_as, book):
    Connection.objects.filter(pk=book[1].pk).update(host="169.254.169.254")
    response = client_as("operator", groups=["ops"]).post(ENTRY_URL, {}, format="json")
    assert response.status_code == 400 and Session.objects.count() == 0


# --- POST /api/connections/{id}/connect ------------------------------------------------------


@pytest.fixture
def shared_connection():
    owner = make_user("poweruser")
    return make_connection(owner, "db", host="10.0.0.7", username="dba", password="stored-pw")


def test_connection_connect_needs_authentication(api_client, shared_connection):
    assert api_client.post(f"/api/connections/{shared_connection.pk}/connect", {}, format="json").status_code == 401


def test_user_the_connection_is_shared_with_opens_a_session(client_as, shared_connection):
    client = client_as("operator")
    Share.objects.create(connection=shared_connection, user=client.user)
    response = client.post(f"/api/connections/{shared_connection.pk}/connect", {}, format="json")
    assert response.status_code == 201
    assert set(response.json()) == {"session_id", "client_url", "share_url"}
    session = Session.objects.get()
    assert session.owner == client.user and session.connection == shared_connection
    assert (session.host, session.port, session.username) == ("10.0.0.7", 22, "dba")


def test_connection_shared_with_a_role_opens_a_session(client_as, shared_connection):
    Share.objects.create(connection=shared_connection, role_id="operator")
    assert client_as("operator").post(f"/api/connections/{shared_connection.pk}/connect").status_code == 201


def test_owner_opens_a_session_on_own_connection(client_as):
    client = client_as("poweruser")
    connection = make_connection(client.user, password="pw")
    assert client.post(f"/api/connections/{connection.pk}/connect", {}, format="json").status_code == 201


def test_stranger_cannot_connect(client_as, shared_connection):
    response = client_as("operator").post(f"/api/connections/{shared_connection.pk}/connect", {}, format="json")
    assert response.status_code == 404
    assert Session.objects.count() == 0


def test_viewer_cannot_connect(client_as, shared_connection):
    client = client_as("viewer")
    Share.objects.create(connection=shared_connection, user=client.user)
    response = client.post(f"/api/connections/{shared_connection.pk}/connect", {}, format="json")
    assert response.status_code == 403
    assert Session.objects.count() == 0


def test_connection_connect_override_is_not_stored(client_as, shared_connection):
    client = client_as("operator")
    Share.objects.create(connection=shared_connection, user=client.user)
    body = {"username": "other", "password": "typed-pw", "width": 800, "height": 600}
    assert client.post(f"/api/connections/{shared_connection.pk}/connect", body, format="json").status_code == 201
    connection = Connection.objects.get(pk=shared_connection.pk)
    assert (connection.username, connection.password) == ("dba", "stored-pw")
    session = Session.objects.get()
    assert session.username == "other" and (session.width, session.height) == (800, 600)
    assert route_for(session).target.password == "typed-pw"


def test_a_user_with_sessions_cannot_be_deleted_but_can_be_disabled(admin_client):
    owner = make_user("operator")
    Session.objects.create(owner=owner, session_type="ssh", host="10.0.0.1", port=22, status="ended")
    response = admin_client.delete(f"/api/users/{owner.email}")
    assert response.status_code == 409 and "disable" in response.json()["error"]
    assert admin_client.post(f"/api/users/{owner.email}/disable").status_code == 200
    owner.refresh_from_db()
    assert not owner.is_active


def test_disabling_ends_a_pending_session_too(admin_client, django_capture_on_commit_callbacks):
    owner = make_user("operator")
    session = Session.objects.create(owner=owner, session_type="ssh", host="10.0.0.1", port=22)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/api/users/{owner.email}/disable")
    session.refresh_from_db()
    assert session.status == "terminated" and session.ended_by == admin_client.user
