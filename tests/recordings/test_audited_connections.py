"""audited-connections.txt at /connection-manager/api/v1/, on real sessions against OpenSSH."""

import hashlib
import json
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import AuditEvent
from recordings import indexing
from recordings.models import DownloadTicket, TrailAccessRole
from sessions.models import Session
from sessions.services.sessions import create_session
from tests.factories import make_user
from tests.recordings.conftest import as_user, record
from tests.sessions.helpers import Terminal
from tests.sessions.test_drive import while_live
from tests.targets import account_dir

pytestmark = pytest.mark.django_db(transaction=True)

API = "/connection-manager/api/v1/connections"
FIELDS = {
    "id", "proxy_id", "type", "authentication_method", "user_data", "user_roles", "target_host_data",
    "target_host_address", "target_host_account", "target_host_roles", "remote_address", "connected",
    "disconnected", "duration", "status", "last_activity", "bytes_in", "bytes_out", "force_disconnect", "created",
    "updated", "updated_by", "audit_enabled", "access_group_id", "trail", "index_status", "access_roles", "tags",
}



@pytest.fixture
def trails(sshd):
    """An operator-like owner's two ended sessions (one with a drive upload) and a stranger's."""
    owner, stranger = make_user("poweruser"), make_user("poweruser")
    typed, _ = record(owner, sshd, [(["echo audited-$((6*7)) --force\r"], "audited-42")])
    indexing.index_recording(typed.pk)
    other, _ = record(stranger, sshd, [(["echo stranger-$((6*7))\r"], "stranger-42")])
    indexing.index_recording(other.pk)
    with account_dir("pam-audited-") as directory:
        session, _ = create_session(
            actor=owner, session_type="ssh", host=sshd.host, port=sshd.port, username=sshd.user,
            password=sshd.password, enable_drive=True,
        )
        content = b"trail content " * 5000
        upload = SimpleUploadedFile("report.txt", content)
        response = while_live(
            session, owner,
            lambda: as_user(owner).post(f"/api/sessions/{session.pk}/files/upload", {"path": str(directory), "file": upload}),
        )
        assert response.status_code == 201, response.content
    return {"owner": owner, "stranger": stranger, "typed": typed.session, "other": other.session,
            "drive": Session.objects.get(pk=session.pk), "content": content}


def ids(response):
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["items"]}


def test_listing_shows_every_field_and_only_what_each_role_may_read(trails):
    owner_client = as_user(trails["owner"])
    body = owner_client.get(API).json()
    assert body["count"] == 2 and ids(owner_client.get(API)) == {str(trails["typed"].pk), str(trails["drive"].pk)}
    item = next(i for i in body["items"] if i["id"] == str(trails["typed"].pk))
    assert set(item) >= FIELDS
    assert item["type"] == "SSH" and item["status"] == "DISCONNECTED" and item["authentication_method"] == ["PASSWORD"]
    assert item["user_data"]["display_name"] == trails["owner"].email and item["index_status"] == "INDEXED"
    assert item["duration"].startswith("PT00:00:") and item["bytes_in"] > 0 and item["bytes_out"] > 0
    for role in ("auditor", "admin"):
        assert len(ids(as_user(make_user(role)).get(API, {"limit": 1000}))) == 3
    assert as_user(make_user("viewer")).get(API).status_code == 403
    assert as_user(trails["owner"]).get(f"{API}/{trails['other'].pk}").status_code == 404


def test_paging_and_sorting(trails):
    client = as_user(make_user("auditor"))
    by_bytes = client.get(API, {"sortkey": "bytes_out", "sortdir": "DESC"}).json()["items"]
    assert [i["bytes_out"] for i in by_bytes] == sorted((i["bytes_out"] for i in by_bytes), reverse=True)
    page = client.get(API, {"sortkey": "created", "offset": 1, "limit": 1}).json()
    assert page["count"] == 3 and len(page["items"]) == 1
    assert page["items"][0]["id"] == [i["id"] for i in client.get(API, {"sortkey": "created"}).json()["items"]][1]
    for bad in ({"sortkey": "password"}, {"sortdir": "UP"}, {"limit": 0}, {"offset": "x"}):
        response = client.get(API, bad)
        assert response.status_code == 400 and "error" in response.json()


def test_one_connection_has_its_full_trail(trails):
    drive = as_user(trails["owner"]).get(f"{API}/{trails['drive'].pk}").json()
    channels = {c["type"]: c for c in drive["trail"]["channels"]}
    shell, sftp = channels["shell"], channels["sftp"]
    assert shell["protocol_file"]["name"] == trails["drive"].recording.name
    assert shell["protocol_file"]["sha256"] == trails["drive"].recording.digest and shell["protocol_file"]["closed"]
    assert shell["bytes_server_to_client"] > 0
    [upload] = sftp["transferred_files"]
    assert upload["name"] == "report.txt" and upload["direction"] == 0 and upload["status"] == "OK"
    assert upload["payload_size"] == len(trails["content"]) and sftp["bytes_client_to_server"] == len(trails["content"])
    assert upload["sha256"] == hashlib.sha256(trails["content"]).hexdigest() and upload["content_kept"]


def search(client, body, **query):
    return client.post(API + "/search" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""),
                       body, format="json")


def test_search_by_keywords_and_filters(trails):
    client = as_user(make_user("auditor"))
    typed, other = str(trails["typed"].pk), str(trails["other"].pk)
    assert ids(search(client, {"keywords": "audited-42"})) == {typed}  # in the recorded text
    assert ids(search(client, {"keywords": "--force audited"})) == {typed}  # every keyword matches
    assert ids(search(client, {"keywords": trails["stranger"].email.split("@")[0]})) == {other}
    assert ids(search(client, {"user_display_name": [trails["stranger"].email]})) == {other}
    assert ids(search(client, {"type": ["TELNET"]})) == set()
    assert len(ids(search(client, {"status": ["DISCONNECTED"], "authentication_method": ["PASSWORD"]}))) == 3
    assert ids(search(client, {"status": ["CONNECTED"]})) == set()
    assert ids(search(client, {"id": [typed, other]})) == {typed, other}
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert ids(search(client, {"connected": {"from": later}})) == set()
    assert len(ids(search(client, {"connected": {"to": later}, "mode": ["WEB"]}))) == 3
    TrailAccessRole.objects.create(session=trails["other"], role_id="operator")
    assert ids(search(client, {"access_roles": ["operator"]})) == {other}
    assert ids(search(client, {"has_access_roles": True})) == {other}
    assert len(ids(search(client, {"has_access_roles": False}))) == 2
    for bad in ({"status": ["ASLEEP"]}, {"connected": {"from": "yesterday"}}, {"id": ["not-a-uuid"]},
                {"keywords": 7}, {"tags": 5}, {"has_access_roles": "yes"}):
        response = search(client, bad)
        assert response.status_code == 400 and "error" in response.json(), bad
    assert AuditEvent.objects.filter(action="recordings.searched", details="audited-42").exists()
    # An owner's search sees only their own trails.
    assert ids(search(as_user(trails["owner"]), {"keywords": "stranger-42"})) == set()


def ticket(client, path):
    response = client.post(path)
    assert response.status_code == 201, response.content
    return response.json()["session_id"]


def test_log_downloads_are_single_use_bound_to_the_caller_and_short_lived(trails, sshd):
    session = trails["typed"]
    channel = session.trail_channels.get(kind="shell")
    base = f"{API}/{session.pk}/channel/{channel.pk}/log"
    owner = as_user(trails["owner"])
    download_id = ticket(owner, base)
    response = owner.get(f"{base}/{download_id}", {"format": "jsonl"})
    assert response.status_code == 200, response.content
    events = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert {e["type"] for e in events} == {"stdout", "stdin"}  # no window change in this session
    assert any("audited-42" in e["data"] for e in events if e["type"] == "stdout")
    assert all(e["data"] == "" for e in events if e["type"] == "stdin")  # no keystroke recorded
    assert not any(sshd.password in e["data"] for e in events)  # the target's password never travels there
    assert owner.get(f"{base}/{download_id}").status_code == 404  # used once
    # Bound to its maker: an auditor who may read the trail cannot spend the owner's id.
    download_id = ticket(owner, base)
    assert as_user(make_user("auditor")).get(f"{base}/{download_id}").status_code == 404
    hexed = owner.get(f"{base}/{download_id}", {"filter": "stdout"})
    text = b"".join(hexed.streaming_content).decode()
    assert " stdout " in text and " stdin " not in text
    dumped = b"".join(bytes.fromhex(line[10:58]) for line in text.splitlines() if line[:8].isalnum() and line[8:10] == "  ")
    assert b"audited-42" in dumped  # hexdump -C's layout, read back
    # Expired.
    download_id = ticket(owner, base)
    DownloadTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert owner.get(f"{base}/{download_id}").status_code == 404
    assert owner.get(f"{base}/{ticket(owner, base)}", {"filter": "stdout,keystrokes"}).status_code == 400
    assert AuditEvent.objects.filter(action="trail.downloaded", user=trails["owner"]).count() == 2


def test_a_transferred_file_downloads_as_it_was_sent(trails):
    session = trails["drive"]
    channel = session.trail_channels.get(kind="sftp")
    file = channel.files.get()
    path = f"{API}/{session.pk}/channel/{channel.pk}/file/{file.pk}"
    auditor = as_user(make_user("auditor"))
    response = auditor.get(f"{path}/{ticket(auditor, path)}")
    assert response.status_code == 200 and b"".join(response.streaming_content) == trails["content"]
    assert response["X-Content-SHA256"] == hashlib.sha256(trails["content"]).hexdigest()
    # The stranger cannot see the trail, so cannot even ask for an id.
    assert as_user(trails["stranger"]).post(path).status_code == 404
    # No log on the sftp channel: its files are the trail.
    assert auditor.post(f"{API}/{session.pk}/channel/{channel.pk}/log").status_code == 404


def test_access_roles_are_granted_by_those_who_read_every_trail(trails):
    other = trails["other"]
    path = f"{API}/{other.pk}/access_roles"
    operator = make_user("operator")
    assert as_user(operator).get(f"{API}/{other.pk}").status_code == 404
    # The owner of a trail (recordings.view only) cannot hand it to a role.
    assert as_user(trails["stranger"]).post(f"{path}/operator").status_code == 403
    auditor = as_user(make_user("auditor"))
    assert auditor.post(f"{path}/operator").status_code == 204
    assert auditor.post(f"{path}/operator").status_code == 204  # idempotent
    assert [r["id"] for r in auditor.get(path).json()] == ["operator"]
    assert as_user(operator).get(f"{API}/{other.pk}").status_code == 200  # the role's members read it now
    assert auditor.post(f"{path}/nosuchrole").status_code == 404
    assert auditor.delete(f"{path}/operator").status_code == 204
    assert as_user(operator).get(f"{API}/{other.pk}").status_code == 404
    auditor.post(f"{path}/operator")
    TrailAccessRole.objects.create(session=trails["typed"], role_id="operator")
    assert as_user(trails["owner"]).delete(f"{API}/access_roles/operator").status_code == 403
    assert auditor.delete(f"{API}/access_roles/operator").status_code == 204
    assert not TrailAccessRole.objects.exists()
    assert AuditEvent.objects.filter(action="trail.access_changed").count() == 4


def test_tags_are_replaced_and_listed_by_prefix(trails):
    auditor = as_user(make_user("auditor"))
    typed, drive = trails["typed"].pk, trails["drive"].pk
    assert auditor.put(f"{API}/{typed}/tags", ["incident-42", "prod", "prod "], format="json").status_code == 204
    assert auditor.put(f"{API}/{drive}/tags", ["incident-7"], format="json").status_code == 204
    assert auditor.get(f"{API}/{typed}").json()["tags"] == ["incident-42", "prod"]
    assert auditor.get(f"{API}/tags", {"query": "inc"}).json() == {"count": 2, "items": ["incident-42", "incident-7"]}
    assert auditor.get(f"{API}/tags", {"query": "inc", "sortdir": "DESC", "limit": 1}).json()["items"] == ["incident-7"]
    assert ids(search(auditor, {"tags": ["prod"]})) == {str(typed)}
    assert auditor.put(f"{API}/{typed}/tags", {"tags": "x"}, format="json").status_code == 400
    assert as_user(trails["owner"]).put(f"{API}/{typed}/tags", ["mine"], format="json").status_code == 403
    assert as_user(trails["stranger"]).get(f"{API}/tags").json()["items"] == []  # tags of trails they cannot read


def test_force_disconnect_ends_a_live_connection_within_a_second(sshd):
    owner = make_user("poweruser")
    session, _ = create_session(
        actor=owner, session_type="ssh", host=sshd.host, port=sshd.port, username=sshd.user, password=sshd.password,
    )
    admin, auditor = as_user(make_user("admin")), as_user(make_user("auditor"))

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        live = await sync_to_async(admin.get)(f"{API}/{session.pk}")
        assert live.json()["status"] == "CONNECTED"
        refused = await sync_to_async(auditor.post)(f"{API}/{session.pk}/disconnect")
        assert refused.status_code == 403  # reads every trail, ends none
        asked = time.monotonic()
        response = await sync_to_async(admin.post)(f"{API}/{session.pk}/disconnect")
        assert response.status_code == 200
        await terminal.until_event("ended", timeout=5)
        took = time.monotonic() - asked
        await terminal.close()
        return response.json(), took

    body, took = async_to_sync(scenario)()
    assert body["status"] == "DISCONNECTED" and body["force_disconnect"]
    assert took < 1.0, took
    assert admin.post(f"{API}/{session.pk}/disconnect").status_code == 400  # ended already


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+23:00", "2026-13-01T00:00:00", "0346-02-12T17:36:18+23:32"])
def test_search_dates_any_offset_or_out_of_range_are_a_clear_answer(admin_client, moment):
    response = admin_client.post(f"{API}/search", {"connected": {"from": moment}}, content_type="application/json")
    assert response.status_code in (200, 400), response.content


def test_many_keywords_are_refused_before_the_database_is_asked(admin_client):
    keywords = " ".join(f"w{n}xyz" for n in range(11))
    response = admin_client.post(f"{API}/search", {"keywords": keywords}, content_type="application/json")
    assert response.status_code == 400 and "keywords" in response.json()["error"]
