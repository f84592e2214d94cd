"""Long transfers through the whole web path pass SSH re-keys at full speed, both ways.

PAM's SSH client re-keys every 512 MiB (targets.openssh.REKEY_LIMIT). More than 2 GiB goes
each way through the websocket, the consumer, the live session and the ssh client to a real sshd;
no pause between consecutive pieces of progress may exceed a second, and the target's own
log proves the re-keys happened during the run. The session is not recorded, to keep 4 GiB off
the disk; recording is covered by test_terminal.
"""

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync

from sessions.services.sessions import create_session
from tests.factories import make_user
from tests.sessions.helpers import Terminal

pytestmark = pytest.mark.django_db(transaction=True)

SIZE = 2 * 1024**3 + 64 * 1024**2  # a little over 2 GiB
MAX_PAUSE = 1.0
DAPHNE_MAX_FRAME = 1024**2  # autobahn's payload limit in daphne: a bigger frame is dropped
LINE = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-0123456789abcdefghijklmnopq\n"
CHUNK = LINE * (1024**2 // len(LINE))  # about 1 MiB of printable bytes per websocket frame
PROGRESS_EVERY = 1024**2
AHEAD = 16 * 1024**2  # how far the sender may run ahead of what the target confirmed

# Run by the target account: reads SIZE bytes from the raw terminal, reporting as it goes.
UPLOAD_READER = """
import os, sys
size, step = int(sys.argv[1]), int(sys.argv[2])
got, mark = 0, step
while got < size:
    data = os.read(0, 1 << 20)
    if not data:
        break
    got += len(data)
    if got >= mark:
        sys.stdout.write("P%d\\n" % got)
        sys.stdout.flush()
        mark += step
sys.stdout.write("UPLOAD-DONE %d\\n" % got)
sys.stdout.flush()
"""


def kex_count(sshd):
    return sshd.log_text().count("SSH2_MSG_KEXINIT received")


async def receive(terminal, timeout=30):
    """One message from the session: ("data", bytes) or ("event", dict)."""
    message = await terminal.ws.receive_output(timeout)
    if message["type"] == "websocket.close":
        raise AssertionError(f"the session closed: {message}")
    if message.get("bytes") is not None:
        return "data", message["bytes"]
    event = json.loads(message["text"])
    if event.get("type") == "mark":  # what came before it is read: say so, as a browser does
        await terminal.control(type="ack", mark=event["id"])
    return "event", event


async def shell_ready(terminal):
    """Wait for the prompt, then put the terminal in raw mode so bytes pass untouched."""
    await terminal.until_event("status", state="active")
    await terminal.type("stty raw -echo; echo RAW-$((1+1))\n")
    await terminal.until_output("RAW-2")


def open_session(sshd):
    owner = make_user("poweruser")
    session, _ = create_session(
        actor=owner, session_type="ssh", host=sshd.host, port=sshd.port, username=sshd.user,
        password=sshd.password, recording_enabled=False,
    )
    return owner, session


def test_download_of_more_than_2_gib_passes_rekeys_without_pausing(sshd):
    owner, session = open_session(sshd)
    kex_before = kex_count(sshd)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await shell_ready(terminal)
        await terminal.type(f"yes {LINE[:-1].decode()} | head -c {SIZE}; echo; echo DOWNLOAD-DONE\n")
        got, tail, longest, last, biggest = 0, b"", 0.0, None, 0
        while b"DOWNLOAD-DONE" not in tail:
            try:
                kind, payload = await receive(terminal)
            except TimeoutError:
                raise AssertionError(f"output stopped after {got} bytes") from None
            if kind != "data":
                continue
            now = time.monotonic()
            if last is not None:
                longest = max(longest, now - last)
            last = now
            got += len(payload)
            biggest = max(biggest, len(payload))
            tail = (tail + payload)[-4096:]
        await terminal.type("exit\n")
        await terminal.close()
        return got, longest, biggest

    started = time.monotonic()
    got, longest, biggest = async_to_sync(scenario)()
    elapsed = time.monotonic() - started
    assert got > SIZE
    assert biggest <= DAPHNE_MAX_FRAME, "a frame daphne would refuse to send"
    assert longest < MAX_PAUSE, f"output stalled for {longest:.2f}s"
    assert kex_count(sshd) - kex_before >= 1 + 4, "fewer re-keys than 2 GiB at 512 MiB each needs"
    print(f"download: {got / elapsed / 2**20:.1f} MiB/s, longest pause {longest * 1000:.0f} ms")


def test_upload_of_more_than_2_gib_passes_rekeys_without_pausing(sshd):
    owner, session = open_session(sshd)
    kex_before = kex_count(sshd)
    reader = sshd.dir / "upload_reader.py"  # sshd.dir is readable by the target account
    reader.write_text(UPLOAD_READER)
    reader.chmod(0o644)  # the suite runs under the product's umask 077

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await shell_ready(terminal)
        await terminal.type(f"python3 {reader} {SIZE} {PROGRESS_EVERY}\n")
        progress = {"confirmed": 0}
        moved = asyncio.Event()

        async def send():
            sent = 0
            while sent < SIZE:
                while sent - progress["confirmed"] >= AHEAD:
                    moved.clear()
                    await moved.wait()
                piece = CHUNK[: SIZE - sent]
                await terminal.ws.send_to(bytes_data=piece)
                sent += len(piece)

        sender = asyncio.create_task(send())
        longest, last, text = 0.0, None, b""
        try:
            while b"UPLOAD-DONE" not in text:
                try:
                    kind, payload = await receive(terminal)
                except TimeoutError:
                    raise AssertionError(f"input stopped after {progress['confirmed']} bytes") from None
                if kind != "data":
                    continue
                text = (text + payload)[-4096:]
                reports = [int(line[1:]) for line in text.split(b"\n")[:-1] if line[1:].isdigit() and line[:1] == b"P"]
                if reports and max(reports) > progress["confirmed"]:
                    now = time.monotonic()
                    if last is not None:
                        longest = max(longest, now - last)
                    progress["confirmed"], last = max(reports), now
                    moved.set()
        finally:
            sender.cancel()
        done = int(text.split(b"UPLOAD-DONE ")[1].split(b"\n")[0])
        await terminal.type("exit\n")
        await terminal.close()
        return done, longest

    started = time.monotonic()
    done, longest = async_to_sync(scenario)()
    elapsed = time.monotonic() - started
    assert done == SIZE
    assert longest < MAX_PAUSE, f"input stalled for {longest:.2f}s"
    assert kex_count(sshd) - kex_before >= 1 + 4, "fewer re-keys than 2 GiB at 512 MiB each needs"
    print(f"upload: {done / elapsed / 2**20:.1f} MiB/s, longest pause {longest * 1000:.0f} ms")
