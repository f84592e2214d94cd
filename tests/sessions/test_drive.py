"""File transfer (enable_drive) on SSH sessions, against the real OpenSSH sshd of tests.targets.

A live session is driven through the in-process websocket; the drive endpoints are called as
the web console or an API client would, from the test thread while the session's event loop
runs, so every request crosses the channel layer to the session's home node (in-memory or Redis,
whichever backend the run uses) and reaches the target over the session's own SSH connection.
"""

import asyncio
import json
import os
import pwd
import socket
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from accounts.choices import AuditAction
from accounts.models import AuditEvent, Role
from sessions import drive
from sessions.models import Session
from sessions.services.lifecycle import terminate_session
from sessions.services.sessions import create_session
from tests.factories import make_user, make_user_token
from tests.processes import daphne_process
from tests.sessions.helpers import NetTerminal, Terminal
from tests.targets import ACCOUNT, account_dir, account_file

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def target_dir(sshd):
    with account_dir("pam-drive-") as path:
        yield path


def client_for(user, **token_fields):
    _, token = make_user_token(user, **token_fields)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def ssh_session(owner, sshd, enable_drive=True, session_type="ssh"):
    session, _ = create_session(
        actor=owner, session_type=session_type, host=sshd.host, port=sshd.port, username=sshd.user,
        password=sshd.password, enable_drive=enable_drive,
    )
    return session


def while_live(session, owner, work, streamed=False):
    """Open the session's terminal, run ``work()`` (synchronous) while it is connected, end it.

    ``streamed``: ``work`` returns a streaming response; read its body on the event loop, as
    daphne does, and return ``(response, body)``.
    """

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        try:
            result = await database_sync_to_async(work)()
            if streamed:
                result = result, b"".join([part async for part in result.streaming_content])
            return result
        finally:
            await terminal.control(type="terminate")
            await terminal.until_event("ended")

    return async_to_sync(scenario)()


def files_url(session, what=""):
    return f"/api/sessions/{session.pk}/files" + (f"/{what}" if what else "")


def test_owner_lists_a_directory_on_the_target(sshd, target_dir):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    account_file(target_dir, "notes.txt", b"x" * 1234)
    (target_dir / "sub").mkdir()
    (target_dir / "to-sub").symlink_to(target_dir / "sub")

    response = while_live(
        session, owner, lambda: client_for(owner).get(files_url(session), {"path": str(target_dir)})
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["path"] == str(target_dir) and body["truncated"] is False
    entries = {e["name"]: e for e in body["entries"]}
    assert [e["name"] for e in body["entries"]] == ["sub", "to-sub", "notes.txt"]  # directories first
    assert entries["notes.txt"]["type"] == "file" and entries["notes.txt"]["size"] == 1234
    assert entries["notes.txt"]["mode"].startswith("-rw") and entries["notes.txt"]["mtime"]
    assert entries["sub"]["type"] == "dir" and not entries["sub"]["link"]
    assert entries["to-sub"]["type"] == "dir" and entries["to-sub"]["link"]


def test_listing_without_a_path_is_the_target_users_login_directory(sshd):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)

    response = while_live(session, owner, lambda: client_for(owner).get(files_url(session)))

    assert response.status_code == 200
    assert response.json()["path"] == pwd.getpwnam(sshd.user).pw_dir


def test_owner_uploads_a_file_and_the_target_has_it(sshd, target_dir):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    content = os.urandom(700 * 1024)  # several chunks, more than the flow-control window

    def upload():
        upload = SimpleUploadedFile("report.bin", content)
        return client_for(owner).post(files_url(session, "upload"), {"path": str(target_dir), "file": upload},
                                      format="multipart")

    response = while_live(session, owner, upload)

    assert response.status_code == 201, response.json()
    assert response.json() == {"path": str(target_dir / "report.bin"), "size": len(content)}
    written = target_dir / "report.bin"
    assert written.read_bytes() == content
    assert written.stat().st_uid == pwd.getpwnam(sshd.user).pw_uid  # written as the target user
    assert sorted(p.name for p in target_dir.iterdir()) == ["report.bin"]  # no temporary file left
    event = AuditEvent.objects.get(action=AuditAction.SESSION_FILE_UPLOAD)
    assert event.user == owner and event.object_name == str(session.pk)
    assert event.details == f"{written} ({len(content)} bytes)"


def test_upload_replaces_a_file_of_the_same_name(sshd, target_dir):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    account_file(target_dir, "motd", b"old and longer content")

    def upload():
        upload = SimpleUploadedFile("motd", b"new")
        return client_for(owner).post(files_url(session, "upload"), {"path": str(target_dir), "file": upload},
                                      format="multipart")

    assert while_live(session, owner, upload).status_code == 201
    assert (target_dir / "motd").read_bytes() == b"new"


def test_owner_downloads_a_file_byte_for_byte(sshd, target_dir):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    content = os.urandom(1536 * 1024 + 7)
    path = account_file(target_dir, "dump.bin", content)

    def download():
        return client_for(owner).get(files_url(session, "download"), {"path": str(path)})

    response, received = while_live(session, owner, download, streamed=True)

    assert response.status_code == 200
    assert received == content
    assert response["Content-Length"] == str(len(content))
    assert response["Content-Disposition"] == 'attachment; filename="dump.bin"'
    event = AuditEvent.objects.get(action=AuditAction.SESSION_FILE_DOWNLOAD)
    assert event.user == owner and event.details == f"{path} ({len(content)} bytes)"


def test_paths_that_do_not_exist_are_404(sshd, target_dir):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    missing = str(target_dir / "missing")

    def calls():
        client = client_for(owner)
        return [
            client.get(files_url(session), {"path": missing}),
            client.get(files_url(session, "download"), {"path": missing}),
            client.post(
                files_url(session, "upload"), {"path": missing, "file": SimpleUploadedFile("a", b"a")},
                format="multipart",
            ),
        ]

    for response in while_live(session, owner, calls):
        assert response.status_code == 404
        assert response.json() == {"error": f"No such file or directory on the target: {missing}"}


def test_transfers_over_the_size_cap_are_413(sshd, target_dir, settings):
    settings.DRIVE_MAX_BYTES = 1000
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    big = account_file(target_dir, "big.bin", b"b" * 1001)

    def upload(client, data):
        body = {"path": str(target_dir), "file": SimpleUploadedFile("big", data)}
        return client.post(files_url(session, "upload"), body, format="multipart")

    def calls():
        client = client_for(owner)
        return [
            client.get(files_url(session, "download"), {"path": str(big)}),
            upload(client, b"b" * 1001),  # the file's size is checked
            upload(client, b"b" * 100_000),  # and before that, the request body's
        ]

    for response in while_live(session, owner, calls):
        assert response.status_code == 413
        assert "1000 bytes" in response.json()["error"]
    assert not AuditEvent.objects.filter(action__startswith="session.file_").exists()


def make_fifo(directory, name):
    path = directory / name
    os.mkfifo(path)
    account = pwd.getpwnam(ACCOUNT)
    os.chown(path, account.pw_uid, account.pw_gid)
    return path


def test_a_named_pipe_is_refused_not_waited_on(sshd, target_dir):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    pipe = make_fifo(target_dir, "pipe")

    def calls():
        client = client_for(owner)
        return [client.get(files_url(session, "download"), {"path": str(pipe)}) for _ in range(20)] + [
            client.get(files_url(session), {"path": str(target_dir)})
        ]

    *downloads, listing = while_live(session, owner, calls)
    for response in downloads:
        assert response.status_code == 400 and response.json() == {"error": f"Not a regular file: {pipe}"}
    assert listing.status_code == 200 and [e["name"] for e in listing.json()["entries"]] == ["pipe"]


def test_a_call_the_target_never_answers_frees_its_thread(sshd, target_dir, monkeypatch):
    """A file swapped for a pipe between the check and the open: the open never returns, but the
    node's transfer threads (one, here) are not held by it for longer than WAIT."""
    monkeypatch.setattr(drive, "WAIT", 2)
    monkeypatch.setattr(drive, "THREADS", ThreadPoolExecutor(max_workers=1))
    monkeypatch.setattr(drive, "_open_for_download", lambda sftp, path: (sftp.open(path, "rb"), 1))
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    pipe = make_fifo(target_dir, "pipe")

    def calls():
        client = client_for(owner)
        stuck = client.get(files_url(session, "download"), {"path": str(pipe)})
        time.sleep(drive.WAIT + 1)  # the home node's own wait runs out too
        return stuck, client.get(files_url(session), {"path": str(target_dir)})

    stuck, listing = while_live(session, owner, calls)
    assert stuck.status_code == 504
    assert listing.status_code == 200 and [e["name"] for e in listing.json()["entries"]] == ["pipe"]


@pytest.mark.parametrize(
    "what, method",
    [("", "get"), ("download", "get"), ("upload", "post")],
)
def test_every_drive_endpoint_is_403_without_enable_drive(sshd, what, method):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd, enable_drive=False)

    response = getattr(client_for(owner), method)(files_url(session, what), {"path": "/etc/hostname"})

    assert response.status_code == 403
    assert response.json() == {"error": "File transfer is not enabled for this session (enable_drive)."}


def test_telnet_sessions_have_no_drive(sshd):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd, session_type="telnet")

    response = client_for(owner).get(files_url(session))

    assert response.status_code == 403
    assert response.json() == {"error": "File transfer is only available on SSH sessions."}


@pytest.mark.parametrize(
    "who, status",
    [
        ("admin", 403),  # sees every session and may watch it, never transfer files
        ("operator", 404),  # another operator does not even see it
        ("owner-capped-at-viewer", 403),
    ],
)
def test_only_the_owner_uses_the_drive(sshd, who, status):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    if who == "owner-capped-at-viewer":
        client = client_for(owner, max_role=Role.objects.get(pk="viewer"))
    else:
        client = client_for(make_user(who))

    response = client.get(files_url(session))

    assert response.status_code == status
    assert "error" in response.json()


def test_unknown_session_is_404():
    owner = make_user("poweruser")

    response = client_for(owner).get(f"/api/sessions/{uuid.uuid4()}/files")

    assert response.status_code == 404
    assert "error" in response.json()


def test_session_not_connected_yet_is_409(sshd):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)  # nobody opened its terminal

    response = client_for(owner).get(files_url(session))

    assert response.status_code == 409
    assert response.json() == {"error": "The session is not connected to its target yet."}


def test_ended_session_is_409(sshd):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd)
    terminate_session(actor=owner, session=session)

    response = client_for(owner).get(files_url(session, "download"), {"path": "/etc/hostname"})

    assert response.status_code == 409
    assert response.json() == {"error": "The session has ended."}


@pytest.mark.parametrize(
    "who, enable_drive, offered",
    [("owner", True, True), ("owner", False, False), ("admin", True, False)],
)
def test_terminal_page_offers_files_only_to_the_owner_of_a_drive_session(sshd, who, enable_drive, offered):
    owner = make_user("poweruser")
    session = ssh_session(owner, sshd, enable_drive=enable_drive)
    browser = Client()
    browser.force_login(owner if who == "owner" else make_user(who))

    page = browser.get(f"/client/{session.pk}")

    assert page.status_code == 200
    assert ('id="client-files"' in page.content.decode()) is offered
    assert ('id="files-dialog"' in page.content.decode()) is offered


# --- two nodes: the HTTP request on one, the session on the other -------------------------------


def http(base, method, path, token, body=None, content_type="application/json"):
    request = urllib.request.Request(
        base + path, method=method, data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def multipart(fields, filename, content):
    """A multipart/form-data body, as a browser's FormData sends it; ``(body, content type)``."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.skipif(
    not django_settings.REDIS_URL
    or django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="two nodes need PostgreSQL and Redis (PAM_DATABASE_URL, PAM_REDIS_URL)",
)
def test_drive_requests_taken_by_another_node_reach_the_home_node(sshd, target_dir, tmp_path):
    """Two daphne processes: the session lives on B, every drive request goes to A."""
    owner = make_user("poweruser")
    _, token = make_user_token(owner)
    session = ssh_session(owner, sshd)
    content = os.urandom(600 * 1024)
    account_file(target_dir, "on-target.bin", content)
    query = urllib.parse.urlencode

    def through(a):
        status, listing = http(a.base, "GET", f"{files_url(session)}?{query({'path': target_dir})}", token)
        assert status == 200 and [e["name"] for e in json.loads(listing)["entries"]] == ["on-target.bin"]
        download = f"{files_url(session, 'download')}?{query({'path': target_dir / 'on-target.bin'})}"
        status, received = http(a.base, "GET", download, token)
        assert status == 200 and received == content
        body, content_type = multipart({"path": target_dir}, "from-a.bin", content[::-1])
        status, done = http(a.base, "POST", files_url(session, "upload"), token, body, content_type)
        assert status == 201 and json.loads(done)["size"] == len(content)

    with daphne_process(log=tmp_path / "a.log") as a, daphne_process(log=tmp_path / "b.log") as b:

        async def scenario():
            terminal = await NetTerminal.open(b.base, session.pk, token)
            await terminal.until_event("status", state="active")
            try:
                home = await database_sync_to_async(lambda: Session.objects.get(pk=session.pk).node)()
                assert home.startswith(f"{socket.gethostname()}-{b.pid}-")
                await asyncio.to_thread(through, a)
            finally:
                await terminal.control(type="terminate")
                await terminal.until_event("ended")

        async_to_sync(scenario)()

    assert (target_dir / "from-a.bin").read_bytes() == content[::-1]
