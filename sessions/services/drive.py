"""File transfer on SSH sessions: what session-broker-v2's ``enable_drive`` means for a Linux target.

An SSH session opened with ``enable_drive`` lets its owner browse, download and upload files on
the target, as the target user, over SFTP through the session's own SSH connection (after its
jump chain): no other credentials, no other connection. Without ``enable_drive`` every drive
request is refused (403), and so is a telnet session.

- Who: the session's owner only, while they could still open it (sessions.policy, with this
  request's token cap: a token capped at viewer transfers nothing). Share-link holders,
  collaborators included, and supervisors never do: a share link is a bearer key to a terminal, and bulk copying files out
  or in is a step beyond typing that only the person who asked for ``enable_drive`` takes.
- When: while the session is connected (``active``); before or after, 409.
- Paths are the target's, as its user sees them (relative ones from the login directory);
  nothing is refused on its form, and no path ever reaches a file system on PAM's side.
- Sizes: one transfer moves at most ``PAM_DRIVE_MAX_BYTES`` (default 100 MiB); beyond, 413.
- Trail: every download (when it starts) and every upload (once the target has the whole
  file) is an audit event with the path and size, and every transfer, however it ended, a
  transferred file of the session's trail with its SHA-256 and (unless the connection turns it
  off) its content, for the audited-connections download (recordings.transfers). The recording
  has no file events: asciicast records a terminal, and has no place for them.

How the request reaches the connection, on one node or many, is sessions.drive's business.
"""

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from nodes.services import node_alive
from pam.exceptions import Conflict, Forbidden, InvalidInput
from recordings.transfers import Capture
from sessions import drive, policy
from sessions.choices import Status, TransferDirection, TransferStatus
from sessions.drive import DriveError

MAX_PATH = 4096


def check_drive(*, actor, session):
    """Refuse unless ``actor`` may transfer files on ``session`` right now."""
    if not session.enable_drive:
        raise Forbidden("File transfer is not enabled for this session (enable_drive).")
    if not policy.offers_files(session):
        raise Forbidden("File transfer is only available on SSH sessions.")
    if not policy.may_use_files(actor, session):
        raise Forbidden("Only the session's owner transfers files; people watching it never do.")
    if session.status != Status.ACTIVE:
        if session.is_finished:
            raise Conflict("The session has ended.")
        raise Conflict("The session is not connected to its target yet.")
    if not node_alive(session.node):
        raise Conflict("The node holding this session is gone; the session is being closed.")


def check_size(size):
    """Refuse a transfer larger than PAM_DRIVE_MAX_BYTES (413)."""
    if size > settings.DRIVE_MAX_BYTES:
        raise DriveError(f"A transfer may move at most {settings.DRIVE_MAX_BYTES} bytes.", 413)


def _path(path, required=False):
    if required and not path:
        raise InvalidInput("A path is required.", field="path")
    if len(path) > MAX_PATH or "\x00" in path:
        raise InvalidInput(f"A path of at most {MAX_PATH} characters, without NUL.", field="path")
    return path


def list_files(*, actor, session, path=""):
    """List a directory on the target (its login directory when ``path`` is empty)."""
    check_drive(actor=actor, session=session)
    return async_to_sync(drive.list_directory)(session.node, session.pk, _path(path))


def download_file(*, actor, session, path, ip=None):
    """Start downloading a file from the target; return ``(size, name, async chunks)``."""
    check_drive(actor=actor, session=session)
    path = _path(path, required=True)
    size, name, chunks = async_to_sync(drive.open_download)(session.node, session.pk, path)
    _audit(AuditAction.SESSION_FILE_DOWNLOAD, actor, session, ip, path, size)
    return size, name, _captured(chunks, Capture(session, direction=TransferDirection.DOWNLOAD, path=path), size)


async def _captured(chunks, capture, size):
    """The download's chunks, passed through its trail capture; the trail row once it ends."""
    status = TransferStatus.CANCELLED  # the browser left before the end
    try:
        async for data in chunks:
            capture.feed(data)
            yield data
        status = TransferStatus.OK if capture.size == size else TransferStatus.FAILED
    finally:
        await chunks.aclose()
        await database_sync_to_async(capture.finish)(status)


def upload_file(*, actor, session, file, path="", ip=None):
    """Write an uploaded file into the directory ``path`` on the target, under its own name.

    A file of that name is replaced, only once the whole new one has arrived.
    """
    check_drive(actor=actor, session=session)
    check_size(file.size)
    name = file.name or ""
    if name in ("", ".", "..") or "/" in name or "\x00" in name:
        raise InvalidInput("The file needs a plain name.", field="file")
    directory = _path(path)
    capture = Capture(session, direction=TransferDirection.UPLOAD, path=f"{directory.rstrip('/')}/{name}" if directory else name)
    try:
        done = async_to_sync(drive.upload)(session.node, session.pk, directory, name, _Tee(file, capture))
    except BaseException:
        capture.finish(TransferStatus.FAILED)
        raise
    capture.path = done["path"]
    capture.finish(TransferStatus.OK)
    _audit(AuditAction.SESSION_FILE_UPLOAD, actor, session, ip, done["path"], done["size"])
    return done


class _Tee:
    """An upload's source, each read also fed to the transfer's trail capture."""

    def __init__(self, source, capture):
        self.source, self.capture = source, capture

    def read(self, size):
        data = self.source.read(size)
        self.capture.feed(data)
        return data


def _audit(action, actor, session, ip, path, size):
    record_event(
        action=action, user=actor, object_type="session", object_name=str(session.pk), ip=ip,
        details=f"{path} ({size} bytes)",
    )
