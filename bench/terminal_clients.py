"""The target and the two clients of bench/terminal_sessions.py: the web path (PAM's API and
terminal websocket) and direct OpenSSH, both typing into the same sshd."""

import asyncio
import json
import subprocess
import time
from pathlib import Path

from harness import BenchFailure
from processes import cpu_seconds

READY = b"BENCH-READY"
# Raw mode, no echo from the terminal: what comes back is what `cat` wrote, byte for byte.
# The quotes keep the shell's echo of the typed command from matching the markers.
ECHO_COMMAND = 'stty raw -echo; echo BENCH-"READY"; exec cat\n'


# --- the target ---------------------------------------------------------------------------------


class Target:
    """The sshd both paths reach, with a key for the OpenSSH client."""

    def __init__(self, workdir):
        from tests.targets import Sshd, ensure_account

        self.password = ensure_account()
        self.sshd = Sshd(self.password)
        self.key = Path(workdir) / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        self.sshd.authorize(self.key.with_suffix(".pub").read_text())

    def __enter__(self):
        self.sshd.start()
        return self

    def __exit__(self, *exc):
        self.sshd.remove()

    def ssh_command(self, remote):
        return [
            "ssh", "-tt", "-q", "-i", str(self.key), "-p", str(self.sshd.port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-c", "aes128-gcm@openssh.com",
            f"{self.sshd.user}@{self.sshd.host}", remote,
        ]


# --- the two clients ------------------------------------------------------------------------------


class WebTerminal:
    """A session opened through PAM's API and attached through its websocket."""

    def __init__(self, server, token, target):
        self.server, self.token, self.target = server, token, target
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.events = []

    async def open(self, command=None):
        import websockets

        body = json.dumps({
            "session_type": "ssh", "hostname": self.target.sshd.host, "port": self.target.sshd.port,
            "username": self.target.sshd.user, "password": self.target.password,
        }).encode()
        status, answer = await asyncio.to_thread(
            self.server.request, "POST", "/api/sessions", body=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        if status != 201:
            raise BenchFailure(f"POST /api/sessions answered {status}: {answer[:200]!r}")
        self.session_id = json.loads(answer)["session_id"]
        url = self.server.base_url.replace("http://", "ws://") + f"/ws/sessions/{self.session_id}/terminal?cols=80&rows=24"
        self.ws = await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {self.token}", "Origin": self.server.base_url},
            max_size=None, compression=None,
        )
        self.reader = asyncio.create_task(self._read())
        if command:
            await self.wait_for_status("active")
            await self.ws.send(command.encode())
            await self.wait_for(READY)

    async def _read(self):
        async for message in self.ws:
            if isinstance(message, bytes):
                self.buffer += message
            else:
                event = json.loads(message)
                if event.get("type") == "mark":  # as the browser does (static/console/terminal.js)
                    await self.ws.send(json.dumps({"type": "ack", "mark": event["id"]}))
                self.events.append(event)
            self.arrived.set()

    async def wait_for_status(self, state, timeout=60):
        deadline = time.monotonic() + timeout
        while not any(e.get("type") == "status" and e.get("state") == state for e in self.events):
            if any(e.get("type") == "ended" for e in self.events) or time.monotonic() > deadline:
                raise BenchFailure(f"web session not {state}: {self.events[-3:]}")
            await self._wait(deadline)

    async def wait_for(self, needle, timeout=60):
        deadline = time.monotonic() + timeout
        while needle not in self.buffer:
            if time.monotonic() > deadline:
                raise BenchFailure(f"web session never showed {needle!r}")
            await self._wait(deadline)
        del self.buffer[: self.buffer.index(needle) + len(needle)]

    async def _wait(self, deadline):
        self.arrived.clear()
        try:
            await asyncio.wait_for(self.arrived.wait(), max(0.01, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pass

    async def echo(self, key, timeout=10):
        """Send one byte; return the seconds until it came back."""
        del self.buffer[:]
        started = time.perf_counter()
        await self.ws.send(key)
        await self.wait_for(key, timeout)
        return time.perf_counter() - started

    async def close(self):
        # End the session now: a bare close leaves it for the owner's reconnect grace (60 s), and
        # a phase's sessions would then end together in the middle of the next phase.
        try:
            await self.ws.send(json.dumps({"type": "terminate"}))
        except Exception:
            pass
        await self.ws.close()
        self.reader.cancel()

    async def ended(self):
        status, answer = await asyncio.to_thread(
            self.server.request, "GET", f"/api/sessions/{self.session_id}",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        return status == 200 and json.loads(answer)["status"] not in ("pending", "connecting", "active")


async def close_all(terminals, timeout=120):
    """Close web terminals and wait until the server has ended each of their sessions."""
    for terminal in terminals:
        await terminal.close()
    deadline = time.monotonic() + timeout
    waiting = list(terminals)
    while waiting and time.monotonic() < deadline:
        waiting = [t for t in waiting if not await t.ended()]
        if waiting:
            await asyncio.sleep(0.5)
    if waiting:
        raise BenchFailure(f"{len(waiting)} sessions still live {timeout} s after they were terminated")


class DirectTerminal:
    """The OpenSSH client running the same command on the same target."""

    def __init__(self, target):
        self.target = target
        self.buffer = bytearray()
        self.arrived = asyncio.Event()

    async def open(self, command=None):
        self.process = await asyncio.create_subprocess_exec(
            *self.target.ssh_command(command or ECHO_COMMAND.strip()), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.reader = asyncio.create_task(self._read())
        await self.wait_for(READY)

    async def _read(self):
        while True:
            data = await self.process.stdout.read(65536)
            if not data:
                return
            self.buffer += data
            self.arrived.set()

    wait_for = WebTerminal.wait_for
    _wait = WebTerminal._wait

    async def echo(self, key, timeout=10):
        del self.buffer[:]
        started = time.perf_counter()
        self.process.stdin.write(key)
        await self.process.stdin.drain()
        await self.wait_for(key, timeout)
        return time.perf_counter() - started

    async def close(self):
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.reader.cancel()

    def cpu(self):
        return cpu_seconds(self.process.pid)
