"""GET/DELETE /api/recordings… on real recordings: who sees which, names, integrity, the audit."""

import pytest

from accounts.models import AuditEvent
from recordings import chain, indexing
from recordings.models import Recording, TrailAccessRole
from tests.factories import make_user
from tests.recordings.conftest import as_user, record

pytestmark = pytest.mark.django_db(transaction=True)



@pytest.fixture
def two_recordings(sshd):
    """One recording of an operator's session and one of another user's, both indexed."""
    mine_owner, other_owner = make_user("poweruser"), make_user("poweruser")
    mine, _ = record(mine_owner, sshd, [(["echo mine-$((6*7))\r"], "mine-42")])
    other, _ = record(other_owner, sshd, [(["echo other-$((6*7))\r"], "other-42")])
    for recording in (mine, other):
        indexing.index_recording(recording.pk)
    return mine_owner, mine, other


def names(response):
    assert response.status_code == 200, response.content
    return {item["name"] for item in response.json()}


def test_each_role_sees_the_recordings_it_may(two_recordings):
    owner, mine, other = two_recordings
    assert names(as_user(owner).get("/api/recordings")) == {mine.name}
    for role in ("auditor", "admin"):
        assert names(as_user(make_user(role)).get("/api/recordings")) == {mine.name, other.name}
    assert as_user(make_user("viewer")).get("/api/recordings").status_code == 403
    # The other user's recording, its file, commands and search hits are hidden from the owner.
    client = as_user(owner)
    for path in (f"/api/recordings/{other.name}", f"/api/recordings/{other.name}/commands",
                 f"/api/recordings/{other.name}/integrity"):
        assert client.get(path).status_code == 404
    assert client.get("/api/recordings/search", {"q": "other-42"}).json()["hits"] == []
    assert [h["recording"] for h in client.get("/api/recordings/search", {"q": "mine-42"}).json()["hits"]]


def test_a_trail_shared_with_a_role_is_readable_by_its_members(two_recordings):
    _, _, other = two_recordings
    operator = make_user("operator")
    assert names(as_user(operator).get("/api/recordings")) == set()
    TrailAccessRole.objects.create(session_id=other.session_id, role_id="operator")
    assert names(as_user(operator).get("/api/recordings")) == {other.name}
    assert as_user(operator).get(f"/api/recordings/{other.name}").status_code == 200


def test_playback_serves_the_file_and_is_audited(two_recordings):
    owner, mine, _ = two_recordings
    response = as_user(owner).get(f"/api/recordings/{mine.name}")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-asciicast"
    body = b"".join(response.streaming_content)
    assert body == mine.path.read_bytes() and b"mine-42" in body
    download = as_user(owner).get(f"/api/recordings/{mine.name}", {"download": "true"})
    assert "attachment" in download["Content-Disposition"]
    details = list(AuditEvent.objects.filter(action="recording.viewed", object_name=mine.name).values_list("details", flat=True))
    assert sorted(details) == ["downloaded", "played"]


@pytest.mark.parametrize(
    "path",
    [
        "../../../var/test/secret.cast",
        "..%2F..%2F..%2Fsecret.cast",
        "%2e%2e/%2e%2e/secret.cast",
        "%252e%252e%252fsecret.cast",
        "2026/12/04/..%5C..%5Csecret.cast",
        "2026/12/04/%00.cast",
        "2026/12/04/\uff0e\uff0e/secret.cast",
        "/etc/secret.cast",
    ],
)
def test_names_outside_the_recordings_are_refused_in_every_encoding(admin_client, path, settings):
    sentinel = settings.DATA_DIR / "secret.cast"  # what a traversal would reach: made here, checked unread
    sentinel.write_text("sentinel-content")
    try:
        response = admin_client.get(f"/api/recordings/{path}")
        assert response.status_code in (400, 404)
        assert b"sentinel-content" not in b"".join(getattr(response, "streaming_content", [response.content]))
    finally:
        sentinel.unlink()


def test_only_admins_delete_and_the_deletion_is_audited(two_recordings):
    owner, mine, _ = two_recordings
    assert as_user(owner).delete(f"/api/recordings/{mine.name}").status_code == 403
    assert as_user(make_user("auditor")).delete(f"/api/recordings/{mine.name}").status_code == 403
    admin = make_user("admin")
    assert as_user(admin).delete(f"/api/recordings/{mine.name}").status_code == 204
    assert not Recording.objects.filter(pk=mine.pk).exists()
    assert not mine.path.exists() and not chain.chain_path(mine.path).exists()
    assert AuditEvent.objects.filter(action="recording.deleted", user=admin, object_name=mine.name).exists()
    assert as_user(admin).get(f"/api/recordings/{mine.name}").status_code == 404


def test_integrity_reports_a_flipped_byte_at_its_block(two_recordings):
    owner, mine, _ = two_recordings
    client = as_user(owner)
    assert client.get(f"/api/recordings/{mine.name}/integrity").json()["intact"] is True
    data = bytearray(mine.path.read_bytes())
    offset = len(data) - 30
    data[offset] ^= 0x01
    mine.path.write_bytes(bytes(data))
    body = client.get(f"/api/recordings/{mine.name}/integrity").json()
    assert body["intact"] is False and body["first_altered_offset"] == offset - offset % chain.BLOCK
    assert AuditEvent.objects.filter(action="recording.verified", object_name=mine.name).count() == 2


def test_filters_narrow_the_list(two_recordings):
    owner, mine, other = two_recordings
    client = as_user(make_user("auditor"))
    assert names(client.get("/api/recordings", {"user": owner.email})) == {mine.name}
    assert names(client.get("/api/recordings", {"q": "other-42"})) == {other.name}  # in the text
    assert names(client.get("/api/recordings", {"protocol": "telnet"})) == set()
    assert names(client.get("/api/recordings", {"index_status": "INDEXED"})) == {mine.name, other.name}
    assert client.get("/api/recordings", {"since": "yesterday"}).status_code == 400


@pytest.mark.parametrize(
    "query",
    ["since=0346-02-12T17:36:18.547388%2B23:32", "since=0001-01-01T00:00:00%2B23:00", "until=9999-12-31T23:59:59-23:00",
     "since=2026-13-01T00:00:00Z"],
)
def test_dates_any_offset_or_out_of_range_are_a_clear_answer(admin_client, query):
    """PostgreSQL takes offsets up to 15:59 only: dates are compared in UTC, or refused."""
    response = admin_client.get(f"/api/recordings?{query}")
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert "error" in response.json()
