"""Files moved through a session, in its trail: name, path, direction, size, SHA-256, status, and
(unless the connection turns it off) a copy of the content for the audited-connections download.

A ``Capture`` is fed the bytes as they pass, whichever way, so a file is never held whole in
memory: they are hashed and, when content is kept, written under
``PAM_DATA_DIR/trail-files/<session id>/<file id>`` (0600). ``finish`` writes the trail row on
the session's ``sftp`` channel, opened with its first transfer and closed with the session.
A saved connection keeps no content when its ``extra_config`` says
``"capture_file_content": false``; the digest and size are kept all the same.
"""

import hashlib
import os
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sessions.choices import TransferDirection, TransferStatus
from sessions.models import SessionChannel, TransferredFile

CHANNEL_KIND = "sftp"


def trail_files_dir():
    return settings.DATA_DIR / "trail-files"


def stored_path(stored):
    """The file holding a transferred file's content (``TransferredFile.stored``)."""
    return trail_files_dir() / stored


def keeps_content(session):
    connection = session.connection
    return connection is None or connection.extra_config.get("capture_file_content", True) is not False


class Capture:
    """One transfer on its way: feed it the bytes, then ``finish`` it with how it ended."""

    def __init__(self, session, *, direction, path):
        self.session = session
        self.direction = direction
        self.path = path
        self.id = uuid.uuid4()
        self.opened_at = timezone.now()
        self.size = 0
        self._hash = hashlib.sha256()
        self._file = None
        self.stored = ""
        if keeps_content(session):
            self.stored = f"{session.pk}/{self.id}"
            target = stored_path(self.stored)
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._file = os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

    def feed(self, data):
        self.size += len(data)
        self._hash.update(data)
        if self._file is not None:
            self._file.write(data)

    def finish(self, status=TransferStatus.OK):
        """Write the trail row; return it."""
        if self._file is not None:
            self._file.close()
            self._file = None
        with transaction.atomic():
            channel = _files_channel(self.session, self.opened_at)
            counter = "bytes_in" if self.direction == TransferDirection.UPLOAD else "bytes_out"
            SessionChannel.objects.filter(pk=channel.pk).update(**{counter: F(counter) + self.size})
            return TransferredFile.objects.create(
                id=self.id, channel=channel, name=os.path.basename(self.path.rstrip("/")) or self.path,
                path=self.path, direction=self.direction, size=self.size, sha256=self._hash.hexdigest(),
                status=status, stored=self.stored, opened_at=self.opened_at, closed_at=timezone.now(),
            )


def _files_channel(session, opened_at):
    channel = SessionChannel.objects.select_for_update().filter(session=session, kind=CHANNEL_KIND).first()
    return channel or SessionChannel.objects.create(session=session, kind=CHANNEL_KIND, opened_at=opened_at)


def remove_contents(session_id):
    """Delete the kept contents of a session's transferred files (with its trail)."""
    directory = trail_files_dir() / str(session_id)
    if directory.is_dir():
        for leftover in directory.iterdir():
            leftover.unlink(missing_ok=True)
        directory.rmdir()
