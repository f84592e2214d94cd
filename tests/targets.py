"""Real targets for session tests, on loopback: OpenSSH sshd instances and Debian's telnetd.

They log in a dedicated local account (``pamtest``), created here if it is missing and given a
new random password each test run (the tests run as root, as CI does). Nothing else on the
machine is touched: every file the targets use lives in the test's temporary directory.
"""

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ACCOUNT = "pamtest"
SSHD = "/usr/sbin/sshd"
TELNETD = "/usr/sbin/telnetd"


# The account's password, readable by root only: test runs and benchmarks running side by side
# share it instead of each setting a new one under the others' feet.
PASSWORD_FILE = Path("/var/tmp/pam-test-account.password")


def ensure_account():
    """Create the target account if needed and give it a random password; return the password."""
    if subprocess.run(["id", ACCOUNT], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", ACCOUNT], check=True)
        PASSWORD_FILE.unlink(missing_ok=True)
    try:
        return PASSWORD_FILE.read_text().strip()
    except FileNotFoundError:
        pass
    password = "pw-" + secrets.token_urlsafe(12)
    subprocess.run(["chpasswd"], input=f"{ACCOUNT}:{password}\n", text=True, check=True)
    fd = os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password)
    return password


@contextmanager
def account_dir(prefix="pam-test-"):
    """A fresh directory of the target account's own, in its home; removed afterwards.

    For tests moving files to and from a target as its user sees them (never system files).
    """
    account = pwd.getpwnam(ACCOUNT)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=account.pw_dir))
    os.chown(path, account.pw_uid, account.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def account_file(directory, name, content):
    """Write a file in ``directory`` owned by the target account; return its path."""
    account = pwd.getpwnam(ACCOUNT)
    path = directory / name
    path.write_bytes(content)
    os.chown(path, account.pw_uid, account.pw_gid)
    return path


def free_port(address="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def wait_for_port(host, port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open within {timeout}s")


class Sshd:
    """A private OpenSSH server, listening on the given loopback addresses."""

    def __init__(self, password, addresses=("127.0.0.1",)):
        # sshd reads authorized keys as the target user, so they live where that user can reach
        # (pytest's own temporary directories are private to root).
        self.dir = Path(tempfile.mkdtemp(prefix="pam-test-sshd-"))
        self.addresses = addresses
        self.host = addresses[0]
        self.port = free_port(self.host)
        self.user = ACCOUNT
        self.password = password
        self.log = self.dir / "sshd.log"
        self.keys_dir = self.dir / "authorized_keys"
        self.keys_dir.mkdir(exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(self.keys_dir, 0o755)
        self.host_key = self.dir / "ssh_host_ed25519_key"
        self.new_host_key()
        self.process = None

    def new_host_key(self):
        for path in (self.host_key, self.host_key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)

    def authorize(self, public_key):
        path = self.keys_dir / self.user
        with path.open("a") as fh:
            fh.write(public_key.strip() + "\n")
        os.chmod(path, 0o644)

    def config(self):
        lines = [
            f"Port {self.port}",
            *(f"ListenAddress {address}" for address in self.addresses),
            f"HostKey {self.host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.keys_dir}/%u",
            "StrictModes no",
            "UsePAM yes",
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin no",
            f"AllowUsers {self.user}",
            "AllowTcpForwarding yes",
            "PrintMotd no",
            "PrintLastLog no",
            "Subsystem sftp internal-sftp",
            "LogLevel DEBUG1",
            "MaxStartups 400:30:800",
            "MaxSessions 50",
        ]
        path = self.dir / "sshd_config"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self):
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config())],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        for address in self.addresses:
            wait_for_port(address, self.port)
        return self

    def restart(self):
        self.stop()
        return self.start()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        return self.log.read_text(errors="replace")


class Elsewhere:
    """Another machine, on this one: a network namespace of its own, where 127.0.0.1 is not ours.

    ``target`` is an OpenSSH sshd listening over there on 127.0.0.1:``port``, the same address
    and port as a server here, with a host key of its own. ``jump`` is an OpenSSH jump host
    into that namespace, reachable from here: a small inetd on our 127.0.0.1 runs ``sshd -i``
    inside the namespace (nsenter) for each connection, so what the jump host reaches as
    127.0.0.1:``port`` is the sshd over there. Needs root (the tests run as root).
    """

    def __init__(self, password, port):
        self.target = Sshd(password)
        self.target.port = port
        self.jump = Sshd(password)
        self.jump.host = "127.0.0.1"
        self.process = None
        self._listener = None
        self._children = []

    def start(self):
        self.process = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", f'ip link set lo up && exec {SSHD} -D -e -f "$0"', str(self.target.config())],
            stdout=subprocess.DEVNULL,
            stderr=self.target.log.open("ab"),
        )
        listening = f"Server listening on 127.0.0.1 port {self.target.port}"
        deadline = time.monotonic() + 15
        while listening not in self.target.log_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise TimeoutError(f"the sshd elsewhere did not start: {self.target.log_text()[-2000:]}")
            time.sleep(0.05)
        self._listener = socket.socket()
        self._listener.bind((self.jump.host, 0))
        self._listener.listen(16)
        self.jump.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, args=(str(self.jump.config()),), daemon=True).start()
        return self

    def _serve(self, config):
        namespace = f"--net=/proc/{self.process.pid}/ns/net"
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn, self.jump.log.open("ab") as log:
                self._children.append(
                    subprocess.Popen(["nsenter", namespace, SSHD, "-i", "-e", "-f", config], stdin=conn, stdout=conn, stderr=log)
                )

    def remove(self):
        if self._listener is not None:
            self._listener.close()
        for child in [*self._children, self.process]:
            if child is not None and child.poll() is None:
                child.terminate()
                child.wait(10)
        self.target.remove()
        self.jump.remove()


class Telnetd:
    """Debian's telnetd (inetutils) behind a tiny inetd: one telnetd per accepted connection."""

    def __init__(self, password):
        self.host = "127.0.0.1"
        self.user = ACCOUNT
        self.password = password
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, 0))
        self.port = self.sock.getsockname()[1]
        self.children = []
        self._running = True

    def start(self):
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self):
        while self._running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            child = subprocess.Popen([TELNETD, "-h"], stdin=conn, stdout=conn, stderr=subprocess.DEVNULL, close_fds=True)
            conn.close()
            self.children.append(child)

    def stop(self):
        self._running = False
        self.sock.close()
        for child in self.children:
            if child.poll() is None:
                child.terminate()


def available():
    return shutil.which(SSHD) is not None and shutil.which(TELNETD) is not None


def asciinema_cat(path):
    """`asciinema cat` a recording; it wants a terminal, so give it one (util-linux script)."""
    result = subprocess.run(
        ["script", "-qec", f"asciinema cat {path}", "/dev/null"], capture_output=True, timeout=60
    )
    if result.returncode != 0:
        raise AssertionError(f"asciinema cat failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    return result.stdout.decode(errors="replace")
