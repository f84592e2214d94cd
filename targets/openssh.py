"""Reach an SSH target with the OpenSSH client (``ssh``): one process per session, typed input
through a local PTY (whose size is the terminal's), output through a pipe.

Why a process and not paramiko in the node: the per-packet SSH work (ciphers, MACs, windows,
re-keys) was the largest share of a busy node's CPU, on the node's one thread behind its GIL;
OpenSSH does it in C, in parallel with the node, on another core. Measured (bench/README.md):
the node's own CPU per echoed key down by a fifth, output 0.8x of direct OpenSSH instead of
0.5x, p99 under 200 busy sessions within 25 ms; the price is ~1.3 MiB per session for the
process. Everything PAM decides stays in PAM:

- **The route**: a private ``ssh_config`` written per session names each hop ``hop<N>-<random>``
  (its ``HostKeyAlias`` too) and chains them with ``ProxyJump``; ``ssh -F`` reads nothing else
  (no ``~/.ssh``, no ``/etc/ssh/ssh_config``). The first hop is resolved and checked against the
  deny list here and ``ssh`` is given the address that answered, never the name; later hops are
  resolved by the hop before them, so only their spelling is checked (targets.addresses).
- **Host keys**: ``KnownHostsCommand`` (bin/known-hosts) answers with the route's pin
  (targets.services.hostkeys.HostRoute), or, for a route never met, with the key offered (trust
  on first use); it notes every key offered. Once ``ssh`` has signed in or given up, each offered
  key goes through ``verify_host_key``, which pins it or records a changed one and refuses the
  session, exactly as for paramiko links.
- **Secrets** never reach a command line or the environment: a hop's password is in a file of
  the private directory (mode 0700 on tmpfs) that ``SSH_ASKPASS`` (bin/askpass) reads when
  ``ssh`` asks for that hop's password, a private key is a 0600 file named by ``IdentityFile``;
  both are deleted as soon as the target has signed us in (or refused).
- **What a user could do with a client of their own is off**: no escape character (``~C``
  would open forwardings), no agent or X11 forwarding, no local command but PAM's sign-in mark.
- The process gets SIGKILL if the node dies (``setpriv --pdeathsig``), so a crashed node leaves
  no shell running on a target; it is its own process group, ended with everything it started.
- SFTP runs over the same login (``ControlMaster``): ``open_sftp`` starts ``ssh -s sftp`` on the
  control socket and gives paramiko's SFTP client the pipe.
- Signed in means: the target accepted us (ssh then runs PAM's ``LocalCommand``, which marks its
  stderr) and ssh has put its terminal in raw mode, so what is typed next goes to the target's
  shell untouched. Re-keys happen every 512 MiB each way, as paramiko did.
"""

import asyncio
import base64
import contextlib
import fcntl
import functools
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from asgiref.sync import sync_to_async
from cryptography.hazmat.primitives import serialization

from pam.sshkeys import InvalidKey, load_private_key
from targets.addresses import check_literal, resolve
from targets.models import KnownHost
from targets.services.hostkeys import HostRoute, verify_host_key
from targets.ssh import CONNECT_TIMEOUT, AuthFailed, BufferedSocket, ConnectFailed

SSH = shutil.which("ssh") or "/usr/bin/ssh"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
HELPERS = Path(__file__).resolve().parent / "bin"
# Secrets wait here for the few hundred milliseconds of a sign-in: memory, not disk, when possible.
RUN_DIR = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
SIGNED_IN = b"PAM-SIGNED-IN"
SIGN_IN_TIMEOUT = 90  # seconds for the whole chain: each hop has CONNECT_TIMEOUT to answer
# A pipe holds 64 KiB by default: one read now takes what a fast target sent meanwhile, where
# sixteen reads and a joined copy did (bench/README.md).
OUTPUT_PIPE_SIZE = 1 << 20
RAW_MODE_POLL = 0.002
STDERR_KEPT = 4096  # bytes of the client's complaints kept to explain an end
# Fresh keys every 512 MiB each way, as paramiko does (OpenSSH alone waits for up to 4 GiB).
REKEY_LIMIT = "512M"
CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"  # first: fastest here (AES-NI)


def _quote(value, tokens=False):
    """A value for ssh_config: quoted, so spaces cannot start another option; ``tokens`` for the
    options where ssh expands ``%`` sequences (HostName), so a ``%`` stays a ``%``."""
    if any(c in value for c in '"\n\r\0'):
        raise ConnectFailed("A host or user name holds characters SSH cannot be given.")
    return f'"{value.replace("%", "%%")}"' if tokens else f'"{value}"'


def _openssh_key(text, where):
    """The private key in OpenSSH's own format (stored keys may be PEM of any kind)."""
    try:
        load_private_key(text)  # PAM's checks: size, type, no passphrase
    except InvalidKey as exc:  # stored before today's rules (an oversized key, say)
        raise AuthFailed(f"The private key for {where} cannot be used: {exc}") from None
    if "BEGIN OPENSSH PRIVATE KEY" in text:
        return text.strip() + "\n"
    key = serialization.load_pem_private_key(text.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()


def _reach(host, port):
    """The first address of ``host`` that accepts a connection (after the deny list)."""
    last_error = None
    for address in resolve(host, port):
        try:
            socket.create_connection((address, port), timeout=CONNECT_TIMEOUT).close()
            return address
        except OSError as exc:
            last_error = exc
    raise ConnectFailed(f"Cannot reach {host}:{port}: {last_error}")


@dataclass
class Plan:
    """What one ``ssh`` process is told: hop aliases, their pins' routes, the files written."""

    directory: Path
    hops: tuple
    aliases: list = field(default_factory=list)
    pins: list = field(default_factory=list)

    @property
    def config(self):
        return self.directory / "config"

    @property
    def control(self):
        return self.directory / "mux"

    @property
    def target(self):
        return self.aliases[-1]

    def write(self, name, text, mode=0o600):
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)

    def forget_secrets(self):
        for path in self.directory.glob("*.secret"):
            path.unlink(missing_ok=True)
        for path in self.directory.glob("*.key"):
            path.unlink(missing_ok=True)

    def offered(self):
        """The keys the hops offered, in route order, until the first hop that offered none."""
        keys = []
        for alias in self.aliases:
            try:
                key_type, encoded = (self.directory / f"{alias}.offered").read_text().split()
            except (FileNotFoundError, ValueError):
                break
            keys.append((key_type, base64.b64decode(encoded)))
        return keys

    def remove(self):
        shutil.rmtree(self.directory, ignore_errors=True)


@functools.cache
def _remove_orphaned_directories():
    """Remove, once per process, what the clients of a node that died (kill -9) left: their
    secrets are already gone, their configs and control sockets are not. A directory is named
    after its node's pid."""
    for path in Path(RUN_DIR or tempfile.gettempdir()).glob("pam-ssh-*-*"):
        pid = path.name.split("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def _plan(route, address):
    """Write the private directory of one session: config, pins, secrets (blocking: reads pins)."""
    _remove_orphaned_directories()
    directory = Path(tempfile.mkdtemp(prefix=f"pam-ssh-{os.getpid()}-", dir=RUN_DIR))
    plan = Plan(directory, route.hops)
    try:
        first = route.hops[0]
        pin = HostRoute.direct(address, first.port, first.host)
        for index, hop in enumerate(route.hops):
            if index:
                check_literal(hop.host, hop.port)
                previous = route.hops[index - 1]
                pin = pin.next_hop(previous.username, hop.host, hop.port)
            plan.aliases.append(f"hop{index}-{secrets.token_hex(8)}")
            plan.pins.append(pin)
        known = {k.route: k for k in KnownHost.objects.filter(route__in=[p.digest for p in plan.pins])}
        lines = [
            "Host *",
            "  UserKnownHostsFile /dev/null",
            "  GlobalKnownHostsFile /dev/null",
            f"  KnownHostsCommand {HELPERS / 'known-hosts'} %k %t %K",
            "  StrictHostKeyChecking yes",
            "  UpdateHostKeys no",
            "  CheckHostIP no",
            "  LogLevel ERROR",
            f"  ConnectTimeout {CONNECT_TIMEOUT}",
            "  ServerAliveInterval 30",
            "  NumberOfPasswordPrompts 1",
            "  IdentityAgent none",
            "  ForwardAgent no",
            "  ForwardX11 no",
            "  ClearAllForwardings yes",
            "  EscapeChar none",
            f"  Ciphers {CIPHERS}",
            f"  RekeyLimit {REKEY_LIMIT}",
        ]
        for index, (hop, alias, hop_pin) in enumerate(zip(route.hops, plan.aliases, plan.pins)):
            where = f"{hop.host}:{hop.port}"
            lines += [
                f"Host {alias}",
                f"  HostName {_quote(address if index == 0 else hop.host, tokens=True)}",
                f"  Port {int(hop.port)}",
                f"  User {_quote(hop.username)}",
                f"  HostKeyAlias {alias}",
            ]
            if index:
                lines.append(f"  ProxyJump {plan.aliases[index - 1]}")
            if hop.private_key:
                plan.write(f"{alias}.key", _openssh_key(hop.private_key, where))
                lines += [
                    f"  IdentityFile {directory / (alias + '.key')}",
                    "  IdentitiesOnly yes",
                    "  PreferredAuthentications publickey",
                ]
            elif hop.password:
                plan.write(f"{alias}.secret", hop.password)
                lines += ["  PubkeyAuthentication no", "  PreferredAuthentications password,keyboard-interactive"]
            else:
                raise AuthFailed(f"No credentials to sign in to {where}.")
            pinned = known.get(hop_pin.digest)
            if pinned is not None:
                plan.write(f"{alias}.pin", f"{pinned.key_type} {pinned.public_key}\n")
        lines += [
            "  ControlMaster yes",
            f"  ControlPath {plan.control}",
            "  ControlPersist no",
            "  PermitLocalCommand yes",
            f"  LocalCommand printf '{SIGNED_IN.decode()}\\n' >&2",
        ]
        plan.write("config", "\n".join(lines) + "\n")
        return plan
    except BaseException:
        plan.remove()
        raise


def _environment(plan):
    """The client's whole environment. The malloc settings keep glibc from holding on to the
    megabytes a burst of output passes through (about 0.85 MiB a client once a slow reader has
    caught up; none idle, where OpenSSL's own state is most of the 1.3 MiB: bench/README.md)."""
    return {
        "GLIBC_TUNABLES": "glibc.malloc.top_pad=0:glibc.malloc.trim_threshold=0",
        "PATH": "/usr/bin:/bin",
        "HOME": str(plan.directory),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "PAM_SSH_DIR": str(plan.directory),
        "SSH_ASKPASS": str(HELPERS / "askpass"),
        "SSH_ASKPASS_REQUIRE": "force",
    }


def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Shell:
    """A running ``ssh`` with a shell on the target's PTY (every descriptor non-blocking).

    ``fd`` is the master side of the local PTY that is the client's input: what is typed goes
    in there, and its size is the terminal's size. ``output`` is a pipe the client writes the
    target's output to: a pipe hands over up to its size (OUTPUT_PIPE_SIZE) a read where a PTY
    hands over 4 KiB.
    ``errors`` is the client's stderr, which the node keeps draining.
    """

    def __init__(self, plan, process, fd, output, errors):
        self.plan = plan
        self.process = process
        self.fd = fd
        self.output = output
        self.errors = errors

    def resize(self, cols, rows):
        set_size(self.fd, cols, rows)
        self.signal(signal.SIGWINCH)

    def signal(self, number):
        with contextlib.suppress(ProcessLookupError):  # already gone, with all it started
            os.killpg(self.process.pid, number)

    def open_sftp(self):
        """A paramiko SFTP client on this login, through its control socket (blocking)."""
        return _sftp_over_master(self.plan)

    def close_descriptors(self):
        for fd in (self.fd, self.output, self.errors):
            os.close(fd)

    def finish(self, wait=5):
        """End the client and all it started, reap it, remove its directory (blocking)."""
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait()
        self.plan.remove()


class SftpPipe(BufferedSocket):
    """One end of a socket pair whose other end is an ``ssh -s sftp`` client's stdin and stdout."""

    def __init__(self, sock, process):
        super().__init__(sock)
        self.process = process

    @staticmethod
    def get_name():
        return "sftp"  # paramiko's SFTP client names its log lines after its channel

    def close(self):
        self._sock.close()
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _sftp_over_master(plan):
    ours, theirs = socket.socketpair()
    # ProxyCommand=false: if the master is gone, fail at once rather than connect again.
    command = [
        SSH, "-F", str(plan.config), "-T", "-o", "ControlMaster=no", "-o", "BatchMode=yes",
        "-o", "ProxyCommand=/bin/false", "-s", plan.target, "sftp",
    ]
    try:
        process = subprocess.Popen(
            command, stdin=theirs, stdout=theirs, stderr=subprocess.DEVNULL, env=_environment(plan),
            start_new_session=True,
        )
    finally:
        theirs.close()
    try:
        return paramiko.SFTPClient(SftpPipe(ours, process))
    except (paramiko.SSHException, EOFError, OSError) as exc:
        SftpPipe(ours, process).close()
        raise paramiko.SSHException(f"no SFTP service: {exc}") from None


def _explain(plan, stderr, reached):
    """The user's message for a client that gave up before signing in."""
    text = stderr.decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[-1][:200] if lines else "the SSH client stopped"
    hops = plan.hops
    if reached == 0:
        hop = hops[0]
        if "Connection refused" in text or "timed out" in text or "No route" in text:
            return ConnectFailed(f"Cannot reach {hop.host}:{hop.port}: {reason}")
        return ConnectFailed(f"No SSH service at {hop.host}:{hop.port}: {reason}")
    hop = hops[reached - 1]
    if "Permission denied" in text:
        return AuthFailed(f"Authentication as {hop.username!r} to {hop.host}:{hop.port} failed.")
    if reached < len(hops) and ("open failed" in text or "forwarding failed" in text):
        nxt = hops[reached]
        return ConnectFailed(f"The jump host {hop.host} could not reach {nxt.host}:{nxt.port}: {reason}")
    if reached < len(hops):
        nxt = hops[reached]
        return ConnectFailed(f"No SSH service at {nxt.host}:{nxt.port}: {reason}")
    return ConnectFailed(f"The SSH connection to {hop.host}:{hop.port} failed: {reason}")


@sync_to_async(thread_sensitive=False)
def _prepare(route):
    from django.db import close_old_connections

    close_old_connections()
    try:
        address = _reach(route.hops[0].host, route.hops[0].port)
        return _plan(route, address)
    finally:
        close_old_connections()


@sync_to_async(thread_sensitive=False)
def _verify(plan, user_id):
    """Pin first-seen keys and refuse changed ones, hop by hop (HostKeyChanged)."""
    from django.db import close_old_connections

    close_old_connections()
    try:
        for pin, (key_type, key_bytes) in zip(plan.pins, plan.offered()):
            verify_host_key(pin, key_type, key_bytes, user_id)
    finally:
        close_old_connections()


async def _signed_in(errors):
    """Read the client's stderr until PAM's mark (True) or its end (False); return what it said."""
    loop = asyncio.get_running_loop()
    said = bytearray()
    readable = asyncio.Event()
    loop.add_reader(errors, readable.set)
    try:
        while True:
            await readable.wait()
            readable.clear()
            try:
                data = os.read(errors, 65536)
            except BlockingIOError:
                continue
            if not data:
                return False, bytes(said)
            said += data
            if SIGNED_IN in said:
                return True, bytes(said.replace(SIGNED_IN + b"\n", b""))
    finally:
        loop.remove_reader(errors)


async def _raw_mode(fd, process):
    """Wait until ssh has put its terminal in raw mode (it does so as its session starts): until
    then the local PTY would echo and buffer lines of what is typed."""
    while termios.tcgetattr(fd)[3] & termios.ICANON:
        if process.poll() is not None:
            return  # the reader reports the end
        await asyncio.sleep(RAW_MODE_POLL)


async def open_shell(route, *, user_id=None, cols=80, rows=24):
    """Sign in through the route with ``ssh`` and start a shell on a PTY; return a Shell.

    Raises ConnectFailed (AuthFailed), TargetRefused or HostKeyChanged with a message safe to
    show the user; nothing typed reaches the target before it returns.
    """
    plan = await _prepare(route)
    master, slave = os.openpty()  # a terminal's usual modes: ssh sends them to the target's PTY
    set_size(slave, cols, rows)
    output_read, output_write = os.pipe()
    with contextlib.suppress(OSError):  # past the user's pipe quota (non-root), the default size
        fcntl.fcntl(output_read, fcntl.F_SETPIPE_SZ, OUTPUT_PIPE_SIZE)
    error_read, error_write = os.pipe()
    try:
        # Started from the loop's own thread, which lives as long as the node: the death signal
        # follows the thread that started the process, not the process.
        process = subprocess.Popen(  # noqa: ASYNC220 - a fork and exec, no wait
            [SETPRIV, "--pdeathsig", "KILL", "--", SSH, "-F", str(plan.config), "-tt", plan.target],
            stdin=slave, stdout=output_write, stderr=error_write, env=_environment(plan), start_new_session=True,
        )
    except BaseException:
        for fd in (master, slave, output_read, output_write, error_read, error_write):
            os.close(fd)
        plan.remove()
        raise
    for fd in (slave, output_write, error_write):
        os.close(fd)
    for fd in (master, output_read, error_read):
        os.set_blocking(fd, False)
    shell = Shell(plan, process, master, output_read, error_read)
    try:
        signed_in, said = await asyncio.wait_for(_signed_in(error_read), SIGN_IN_TIMEOUT)
        plan.forget_secrets()
        await _verify(plan, user_id)
        if not signed_in:
            await asyncio.get_running_loop().run_in_executor(None, process.wait)
            raise _explain(plan, said, len(plan.offered()))
        await _raw_mode(master, process)
    except BaseException as exc:
        plan.forget_secrets()
        await asyncio.get_running_loop().run_in_executor(None, shell.finish)
        shell.close_descriptors()
        if isinstance(exc, asyncio.TimeoutError):
            raise ConnectFailed(f"{route} did not sign us in within {SIGN_IN_TIMEOUT} seconds.") from None
        raise
    return shell
