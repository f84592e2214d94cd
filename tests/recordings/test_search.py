"""Search inside real recordings: a session against OpenSSH, indexed, searched to the second."""

import pytest

from accounts.models import AuditEvent
from recordings import indexing
from recordings.models import Recording, RecordingChunk
from tests.factories import make_user
from tests.recordings.conftest import as_user, record
from tests.targets import account_dir

pytestmark = pytest.mark.django_db(transaction=True)

BACKSPACE = "\x7f"



def searched(client, query, **params):
    response = client.get("/api/recordings/search", {"q": query, **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_search_finds_the_session_and_second_of_what_was_shown(sshd):
    owner = make_user("poweruser")
    with account_dir("pam-search-") as directory:
        steps = [
            # A command corrected with backspaces: the line shown, not the keys, is indexed.
            (["e", "c", "h", "o", " ", *"/etc/shadwo", BACKSPACE, BACKSPACE, "o", "w", "\r"], "\r/etc/shadow\r\n"),
            # A coloured ls: escape sequences inside the name are not in the text.
            ([f"cd {directory} && mkdir net-10.0.3.7 && ls --color=always\r"], "10.0.3.7\x1b[0m"),
            # A full-screen program: less draws the file's text with cursor moves.
            (["printf 'fullscreen-%s --force\\n' marker > f.txt && less f.txt\r"], "(END)"),
            (["q"], "$ "),
        ]
        recording, moments = record(owner, sshd, steps, pause=1.5)
    assert recording.index_status == "NOT_INDEXED"  # no worker ran yet
    assert indexing.index_recording(recording.pk) == "INDEXED"
    recording.refresh_from_db()
    assert recording.index_status == "INDEXED" and recording.indexed_at and RecordingChunk.objects.filter(recording=recording).exists()

    client = as_user(owner)

    def hits_within(query, step):
        body = searched(client, query)
        assert body["hits"], f"nothing found for {query!r}"
        before, after = moments[step]
        for hit in body["hits"]:
            assert hit["recording"] == recording.name and hit["session_id"] == str(recording.session_id)
            assert before - 0.25 <= hit["at"] <= after + 0.25, (query, hit, moments)
            start, end = hit["highlight"]
            assert hit["snippet"][start:end].lower() == query.lower()
        return [hit["snippet"] for hit in body["hits"]]

    shadow = hits_within("/etc/shadow", 0)
    assert any(line.endswith("echo /etc/shadow") for line in shadow)  # the corrected command line
    assert "/etc/shadow" in shadow  # and its output
    assert "net-10.0.3.7" in hits_within("10.0.3.7", 1)
    assert hits_within("FULLSCREEN-marker", 2) == ["fullscreen-marker --force"]  # only less showed it
    assert searched(client, "shadwo")["hits"] == []  # the typo was erased before Enter
    assert searched(client, "01;34m")["hits"] == []  # colour codes are not text
    assert searched(client, sshd.password)["hits"] == []  # the stored credential is nowhere in the text

    commands = client.get(f"/api/recordings/{recording.name}/commands").json()
    typed = [c["text"] for c in commands]
    assert typed[0].endswith("echo /etc/shadow") and typed[1].endswith("ls --color=always")
    assert typed[-1].endswith("exit")
    for command, (before, after) in zip(commands, moments, strict=False):
        assert before - 0.25 <= command["at"] <= after + 0.25
    assert AuditEvent.objects.filter(action="recordings.searched", user=owner, details="/etc/shadow").exists()


def test_index_status_goes_through_indexing_and_a_broken_file_fails_with_a_reason(sshd, settings):
    owner = make_user("poweruser")
    recording, _ = record(owner, sshd, [(["echo status-$((6*7))\r"], "status-42")])
    assert indexing.claim(recording.pk)
    assert Recording.objects.get(pk=recording.pk).index_status == "INDEXING"
    assert not indexing.claim(recording.pk)  # a second worker leaves it alone
    assert indexing.index_recording(recording.pk) is None
    settings.RECORDING_INDEX_STALE_AFTER = 0  # the first worker died
    assert indexing.unindexed() == [recording.pk]
    assert indexing.index_recording(recording.pk) == "INDEXED"
    assert indexing.index_recording(recording.pk) is None  # done: the sweep and the task do not repeat it

    with open(recording.path, "ab") as cast:
        cast.write(b"not an event\n")
    assert indexing.index_recording(recording.pk, force=True) == "FAILED"
    recording.refresh_from_db()
    assert recording.index_status == "FAILED" and "is not an asciicast event" in recording.index_error
    assert not RecordingChunk.objects.filter(recording=recording).exists()  # nothing half-indexed
    body = as_user(owner).get("/api/recordings").json()
    assert body[0]["index_status"] == "FAILED" and body[0]["index_error"] == recording.index_error


def test_a_query_under_three_characters_is_refused(client_as):
    response = client_as("operator").get("/api/recordings/search", {"q": "ab"})
    assert response.status_code == 400 and "3 characters" in response.json()["error"]
