"""File transfer on a live SSH session: SFTP over the SSH connection the session already holds.

Only the session's home node holds that connection (sessions.live), and an ad-hoc session's
credentials are wiped once it connects, so no other process could open one of its own. Every
drive request therefore travels over the channel layer to the home node, whichever node took
the HTTP request: one path for the in-memory layer (one process) and for Redis (many nodes).
The home node opens one SFTP channel per request on the last Transport of the jump chain, in a
worker thread, and closes it when the request is done.

The exchange (``reply`` is the requester's channel, ``stream`` one the home node makes for a
transfer; neither is the home node's own channel, which only carries the first message)::

    requester                                  home node
    session.drive {op, path, reply} ─────────▶ node channel
                  ◀── drive.ready {…} | drive.error {status, error}           on reply
    download      ◀── drive.chunk {seq, data} … drive.end                    on reply
                  drive.ack {seq} | drive.cancel ───────────────────────────▶ stream
    upload        drive.chunk {seq, data} … drive.end | drive.cancel ───────▶ stream
                  ◀── drive.ack {seq} … drive.done {path, size}               on reply

The sender keeps at most WINDOW chunks of CHUNK bytes unacknowledged, so a slow browser, disk
or target holds the sender back instead of filling the layer or a node's memory. A side that
hears nothing for WAIT seconds gives the transfer up. An upload is written to a temporary name
beside its destination and renamed over it at the end (OpenSSH's posix-rename), so a failed or
cancelled upload leaves no partial file and keeps the file it would have replaced.
"""

import asyncio
import errno
import logging
import posixpath
import secrets
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import partial

import paramiko
from channels.layers import get_channel_layer
from django.conf import settings

from pam.exceptions import ServiceError
from sessions.runtime import messages

logger = logging.getLogger(__name__)

CHUNK = 256 * 1024
WINDOW = 4
WAIT = 30  # seconds
MAX_ENTRIES = 5000  # a listing stops there (and says so): one message must stay small
CANCELLED = 499  # never reaches HTTP: only the side that did not cancel sees it
# The threads of SFTP calls: their own pool, so slow transfers never hold up sessions connecting.
THREADS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="pam-drive")


class DriveError(ServiceError):
    """A drive request refused or failed; ``status_code`` is the HTTP status that says why."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status_code = status


# --- both ends -------------------------------------------------------------------------------


async def _receive(layer, channel):
    """The next message on ``channel``; the other end's error, a cancel or silence raise."""
    try:
        message = await asyncio.wait_for(layer.receive(channel), WAIT)
    except asyncio.TimeoutError:
        raise DriveError(f"The file transfer stalled: no answer within {WAIT} seconds.", 504) from None
    if message["type"] == "drive.error":
        raise DriveError(message["error"], message["status"])
    if message["type"] == "drive.cancel":
        raise DriveError("The file transfer was cancelled.", CANCELLED)
    return message


class _Window:
    """The sending side of a transfer: at most WINDOW chunks in flight, acknowledged on ``acks``."""

    def __init__(self, layer, acks):
        self.layer = layer
        self.acks = acks
        self.acked = 0

    async def wait(self, sent, limit=WINDOW - 1):
        while sent - self.acked > limit:
            message = await _receive(self.layer, self.acks)
            if message["type"] == "drive.ack":
                self.acked = max(self.acked, message["seq"])


# --- the home node -----------------------------------------------------------------------------


async def serve(node, message):
    """Answer one drive request sent to this node's channel (started by the node's listener)."""
    reply = message["reply"]
    try:
        transport = _transport(node, message["session"])
        await HANDLERS[message["op"]](node.layer, transport, message)
    except DriveError as exc:
        if exc.status_code != CANCELLED:  # a requester that cancelled listens no more
            await node.layer.send(reply, _error(exc.status_code, exc.message))
    except Exception:
        logger.exception("drive %s on session %s failed", message.get("op"), message.get("session"))
        await node.layer.send(reply, _error(500, "The file transfer failed."))


def _error(status, message):
    return {"type": "drive.error", "status": status, "error": message}


def _transport(node, session_id):
    live_session = node.sessions.get(session_id)
    if live_session is None or live_session.state != "active":
        raise DriveError("The session is not connected to its target.", 409)
    if not live_session.row.enable_drive or not live_session.transport.files:
        raise DriveError("File transfer is not enabled for this session.", 403)
    backend = live_session.transport.file_backend()
    if backend is None:
        raise DriveError("The session is not connected to its target.", 409)
    return backend


async def _blocking(fn, *args, path=""):
    """Run paramiko I/O in a worker thread; turn what the target says into a DriveError."""
    try:
        return await asyncio.get_running_loop().run_in_executor(THREADS, partial(fn, *args))
    except DriveError:
        raise
    except TimeoutError:
        raise DriveError(f"The target did not answer for {WAIT} seconds about {path}.", 504) from None
    except OSError as exc:  # paramiko's IOError, with errno when the SFTP status has one
        if exc.errno == errno.ENOENT:
            raise DriveError(f"No such file or directory on the target: {path}", 404) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise DriveError(f"Permission denied on the target: {path}", 403) from None
        raise DriveError(f"The target refused {path}: {exc.strerror or exc}", 400) from None
    except (paramiko.SSHException, EOFError) as exc:
        raise DriveError(f"The connection to the target failed: {exc}", 502) from None


def _quietly(fn, *args):
    """Tidy up after a transfer: a failure here changes nothing anyone could act on."""
    try:
        fn(*args)
    except (OSError, paramiko.SSHException, EOFError):
        pass


def _open_sftp(backend):
    try:
        sftp = backend.open_sftp()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise DriveError(f"The target refused a file transfer channel: {exc}", 502) from None
    if sftp is None:
        raise DriveError("The target refused a file transfer channel.", 502)
    # No call waits on the target for ever: a worker thread stuck on one request (a named pipe
    # nobody writes to, say) would be one fewer for every session on this node.
    sftp.get_channel().settimeout(WAIT)
    return sftp


async def _with_sftp(transport, work):
    sftp = await _blocking(_open_sftp, transport)
    try:
        return await work(sftp)
    finally:
        await asyncio.get_running_loop().run_in_executor(THREADS, _quietly, sftp.close)


def _kind(mode):
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def _mtime(seconds):
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat() if seconds is not None else None


def _directory(sftp, path):
    """The absolute form of ``path`` on the target, which must be a directory."""
    where = sftp.normalize(path or ".")
    if not stat.S_ISDIR(sftp.stat(where).st_mode or 0):
        raise DriveError(f"Not a directory: {where}", 400)
    return where


def _listing(sftp, path):
    where = _directory(sftp, path)
    attributes = sftp.listdir_attr(where)
    entries = []
    for attr in attributes[:MAX_ENTRIES]:
        kind = _kind(attr.st_mode or 0)
        if kind == "link":  # show what it leads to, so a link to a directory can be entered
            try:
                kind = _kind(sftp.stat(posixpath.join(where, attr.filename)).st_mode or 0)
            except OSError:
                kind = "link"  # dangling
        entries.append(
            {
                "name": attr.filename,
                "type": kind,
                "link": stat.S_ISLNK(attr.st_mode or 0),
                "size": attr.st_size,
                "mode": stat.filemode(attr.st_mode or 0),
                "mtime": _mtime(attr.st_mtime),
            }
        )
    entries.sort(key=lambda e: (e["type"] != "dir", e["name"]))
    return {"path": where, "entries": entries, "truncated": len(attributes) > MAX_ENTRIES}


async def _list(layer, transport, message):
    path = message["path"]
    listing = await _with_sftp(transport, lambda sftp: _blocking(_listing, sftp, path, path=path))
    await layer.send(message["reply"], {"type": "drive.ready", **listing})


def _open_for_download(sftp, path):
    attributes = sftp.stat(path)
    if stat.S_ISDIR(attributes.st_mode or 0):
        raise DriveError(f"Is a directory: {path}", 400)
    if not stat.S_ISREG(attributes.st_mode or 0):  # a pipe, socket or device has no end to reach
        raise DriveError(f"Not a regular file: {path}", 400)
    if (attributes.st_size or 0) > settings.DRIVE_MAX_BYTES:
        raise DriveError(f"{path} is larger than the {settings.DRIVE_MAX_BYTES} bytes a transfer may move.",
                         413)
    return sftp.open(path, "rb"), attributes.st_size or 0


def _read(handle, offset, size):
    """Read one chunk with its SFTP requests all in flight at once (readv), not one by one."""
    return b"".join(handle.readv([(offset, size)]))


async def _download(layer, transport, message):
    path, reply = message["path"], message["reply"]

    async def send_file(sftp):
        handle, size = await _blocking(_open_for_download, sftp, path, path=path)
        try:
            stream = await layer.new_channel()
            await layer.send(reply, {"type": "drive.ready", "size": size, "name": posixpath.basename(path),
                                     "stream": stream})
            window = _Window(layer, stream)
            offset = seq = 0
            while offset < size:
                data = await _blocking(_read, handle, offset, min(CHUNK, size - offset), path=path)
                if not data:
                    raise DriveError(f"{path} shrank while it was being read.", 409)
                seq += 1
                offset += len(data)
                await layer.send(reply, {"type": "drive.chunk", "seq": seq, "data": data})
                await window.wait(seq)
            await window.wait(seq, limit=0)  # every ack read: nothing left behind on the stream
            await layer.send(reply, {"type": "drive.end", "size": offset})
        finally:
            await asyncio.get_running_loop().run_in_executor(THREADS, _quietly, handle.close)

    await _with_sftp(transport, send_file)


def _open_for_upload(sftp, directory, name):
    where = _directory(sftp, directory)
    destination = posixpath.join(where, name)
    try:
        if stat.S_ISDIR(sftp.stat(destination).st_mode or 0):
            raise DriveError(f"Is a directory: {destination}", 400)
    except FileNotFoundError:
        pass
    temporary = posixpath.join(where, f".{name}.pam-upload-{secrets.token_hex(4)}")
    handle = sftp.open(temporary, "wb")
    handle.set_pipelined(True)  # writes do not wait for their answers; close() collects them
    return handle, temporary, destination


def _finish_upload(sftp, handle, temporary, destination):
    handle.close()
    sftp.posix_rename(temporary, destination)


def _discard_upload(sftp, handle, temporary):
    _quietly(handle.close)
    _quietly(sftp.remove, temporary)


async def _upload(layer, transport, message):
    reply = message["reply"]

    async def receive_file(sftp):
        handle, temporary, destination = await _blocking(
            _open_for_upload, sftp, message["directory"], message["name"], path=message["directory"] or "~"
        )
        try:
            stream = await layer.new_channel()
            await layer.send(reply, {"type": "drive.ready", "stream": stream, "path": destination})
            size = 0
            while (chunk := await _receive(layer, stream))["type"] == "drive.chunk":
                size += len(chunk["data"])
                if size > settings.DRIVE_MAX_BYTES:
                    raise DriveError(f"Uploads are limited to {settings.DRIVE_MAX_BYTES} bytes.", 413)
                await _blocking(handle.write, chunk["data"], path=destination)
                await layer.send(reply, {"type": "drive.ack", "seq": chunk["seq"]})
            await _blocking(_finish_upload, sftp, handle, temporary, destination, path=destination)
        except BaseException:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(THREADS, _discard_upload, sftp, handle, temporary)
            raise
        await layer.send(reply, {"type": "drive.done", "path": destination, "size": size})

    await _with_sftp(transport, receive_file)


HANDLERS = {"list": _list, "download": _download, "upload": _upload}


# --- the requester (any node) ----------------------------------------------------------------


async def _ask(node, session_id, op, **fields):
    layer = get_channel_layer()
    reply = await layer.new_channel()
    request = {"type": "session.drive", "session": str(session_id), "op": op, "reply": reply, **fields}
    await layer.send(messages.node_channel(node), request)
    return layer, reply, await _receive(layer, reply)


async def list_directory(node, session_id, path):
    """``{path, entries, truncated}`` of a directory on the session's target."""
    _, _, listing = await _ask(node, session_id, "list", path=path)
    return {key: listing[key] for key in ("path", "entries", "truncated")}


async def open_download(node, session_id, path):
    """Start a download: return ``(size, name, chunks)``, ``chunks`` an async iterator of bytes.

    The iterator acknowledges each chunk once the next is asked for (so the HTTP client's pace
    is the sender's), and cancels the transfer when it is closed before the end.
    """
    layer, reply, ready = await _ask(node, session_id, "download", path=path)

    async def chunks():
        finished = False
        try:
            while (message := await _receive(layer, reply))["type"] == "drive.chunk":
                yield message["data"]
                await layer.send(ready["stream"], {"type": "drive.ack", "seq": message["seq"]})
            finished = True
        except DriveError as exc:
            finished = True  # the home node stopped: the response ends short of its Content-Length
            logger.warning("download of %s from session %s cut short: %s", path, session_id, exc.message)
        finally:
            if not finished:
                await layer.send(ready["stream"], {"type": "drive.cancel"})

    return ready["size"], ready["name"], chunks()


async def upload(node, session_id, directory, name, source):
    """Send the file object ``source`` to ``directory/name`` on the target; return ``{path, size}``."""
    layer, reply, ready = await _ask(node, session_id, "upload", directory=directory, name=name)
    loop = asyncio.get_running_loop()
    window = _Window(layer, reply)
    seq = 0
    try:
        while data := await loop.run_in_executor(None, source.read, CHUNK):
            seq += 1
            await layer.send(ready["stream"], {"type": "drive.chunk", "seq": seq, "data": data})
            await window.wait(seq)
        await layer.send(ready["stream"], {"type": "drive.end"})
    except DriveError:
        raise  # the home node stopped, or went silent: nobody to tell
    except BaseException:
        await layer.send(ready["stream"], {"type": "drive.cancel"})
        raise
    while (message := await _receive(layer, reply))["type"] != "drive.done":
        pass  # the last acknowledgements
    return {"path": message["path"], "size": message["size"]}
