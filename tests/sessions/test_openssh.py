"""The OpenSSH client behind SSH sessions (targets.openssh), seen as an attacker would look at it.

The client runs beside the node with the session's secrets for the moment of its sign-in: the
tests read what any local process could (command lines, environments, the private directory)
and what a user at the terminal or a server on the route could try to make of it.
"""

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest
from asgiref.sync import async_to_sync
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from targets.openssh import HELPERS, OUTPUT_PIPE_SIZE, open_shell
from targets.routes import Hop, Route
from tests.factories import make_user
from tests.sessions.helpers import Terminal
from tests.sessions.test_terminal import run_command, ssh_session
from tests.targets import Sshd

pytestmark = pytest.mark.django_db(transaction=True)


def ssh_clients(besides=()):
    """The running ssh processes this test process started (the live sessions run in it), but
    those in ``besides`` (what earlier tests' sessions left running or unreaped)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.name() == "ssh" and process.status() != psutil.STATUS_ZOMBIE and process not in besides:
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def private_directory(client):
    command = client.cmdline()
    return Path(command[command.index("-F") + 1]).parent


def run_and_exit(session, owner, command, expect):
    """Open the session's terminal, see ``command`` print ``expect``, and leave the shell."""

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await run_command(terminal, command, expect)
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()


def askpass(directory, prompt):
    result = subprocess.run(
        [str(HELPERS / "askpass"), prompt], env={"PAM_SSH_DIR": str(directory)}, capture_output=True, text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def test_askpass_gives_a_hop_only_its_own_secret(tmp_path):
    (tmp_path / "hop0-aaaa.secret").write_text("jump-secret")
    (tmp_path / "hop1-bbbb.secret").write_text("target-secret")
    (tmp_path.parent / "outside.secret").write_text("sentinel")
    assert askpass(tmp_path, "alice@hop0-aaaa's password: ") == "jump-secret"
    assert askpass(tmp_path, "(alice@hop1-bbbb) Password: ") == "target-secret"
    # What a server writes after ssh's own "(user@alias) " cannot point at another hop.
    assert askpass(tmp_path, "(alice@hop0-aaaa) alice@hop1-bbbb's password: ") == "jump-secret"
    assert askpass(tmp_path, "(alice@hop0-aaaa) (alice@hop1-bbbb) Password: ") == "jump-secret"
    for prompt in (
        "alice@hop1-bbbb's password: and more",  # not ssh's password prompt
        "Enter passphrase for key: ",
        "alice@../outside's password: ",
        "(alice@../outside) Password: ",
        "alice@hop9-zzzz's password: ",
        "",
    ):
        assert askpass(tmp_path, prompt) is None, prompt


def test_no_secret_is_on_a_command_line_in_an_environment_or_left_on_disk(sshd, jump_sshd, tmp_path):
    key_file = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    sshd.authorize(key_file.with_suffix(".pub").read_text())
    private_key = key_file.read_text()
    owner = make_user("poweruser")
    hop = {"host": "127.0.0.2", "port": jump_sshd.port, "username": jump_sshd.user, "password": jump_sshd.password}
    session, _ = ssh_session(owner, sshd, password="", private_key=private_key, jump_hosts=[hop])
    key_body = "".join(private_key.splitlines()[1:-1])
    before = ssh_clients()

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await run_command(terminal, "echo signed-$((40+2))", "signed-42")
        clients = ssh_clients(besides=before)
        assert len(clients) == 2  # the session's client and the one it runs for its jump host
        directory = private_directory(clients[0])
        for client in clients:
            seen = " ".join(client.cmdline()) + Path(f"/proc/{client.pid}/environ").read_text(errors="replace")
            assert jump_sshd.password not in seen and key_body[:40] not in seen
        assert oct(directory.stat().st_mode & 0o777) == "0o700"
        files = sorted(p.name for p in directory.iterdir())
        assert not [name for name in files if name.endswith((".secret", ".key"))], files
        for path in directory.iterdir():
            if path.is_file():
                text = path.read_text(errors="replace")
                assert jump_sshd.password not in text and key_body[:40] not in text, path.name
        await terminal.type("exit\n")
        await terminal.until_event("ended")
        return clients, directory

    clients, directory = async_to_sync(scenario)()
    _, alive = psutil.wait_procs(clients, timeout=10)
    assert not alive and not directory.exists()


def test_escape_sequences_typed_at_the_terminal_reach_the_target_not_the_client(sshd):
    """``~C`` would open ssh's command line (new forwardings), ``~.`` would drop the link."""
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd)

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await run_command(terminal, "echo ready-$((2*2))", "ready-4")
        await terminal.type("\r~C\r~.\r~#\r")
        await run_command(terminal, "echo still-$((5*5))", "still-25")
        assert b"ssh>" not in terminal.output and b"forwarded connections" not in terminal.output
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()


class KeyboardInteractiveSshd(Sshd):
    """A target that asks for the password through keyboard-interactive (PAM) only, as many do."""

    def config(self):
        path = super().config()
        text = path.read_text().replace("PasswordAuthentication yes", "PasswordAuthentication no")
        path.write_text(text.replace("KbdInteractiveAuthentication no", "KbdInteractiveAuthentication yes"))
        return path


@pytest.fixture(scope="module")
def kbd_sshd(target_password):
    server = KeyboardInteractiveSshd(target_password).start()
    yield server
    server.remove()


def test_a_target_asking_through_keyboard_interactive_gets_the_password(kbd_sshd):
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, kbd_sshd)
    run_and_exit(session, owner, "echo kbd-$((6*6))", "kbd-36")
    assert "keyboard-interactive/pam for pamtest" in kbd_sshd.log_text()


def test_a_wrong_password_through_keyboard_interactive_fails_clearly(kbd_sshd):
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, kbd_sshd, password="not-the-password")

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        return await terminal.until_event("ended")

    ended = async_to_sync(scenario)()
    assert ended["status"] == "failed" and "Authentication as 'pamtest'" in ended["message"], ended


def _pem(key, private_format):
    return key.private_bytes(serialization.Encoding.PEM, private_format, serialization.NoEncryption()).decode()


@pytest.mark.parametrize(
    "make_key, private_format",
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), serialization.PrivateFormat.TraditionalOpenSSL),
        (lambda: ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL),
    ],
    ids=["rsa-pem", "ecdsa-pem"],
)
def test_private_keys_stored_as_pem_sign_in(sshd, make_key, private_format):
    key = make_key()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    sshd.authorize(public.decode())
    owner = make_user("poweruser")
    session, _ = ssh_session(owner, sshd, password="", private_key=_pem(key, private_format))
    run_and_exit(session, owner, "echo pem-$((3+4))", "pem-7")


def test_a_terminated_session_ends_its_client_and_everything_it_started(sshd, jump_sshd):
    owner = make_user("poweruser")
    hop = {"host": "127.0.0.2", "port": jump_sshd.port, "username": jump_sshd.user, "password": jump_sshd.password}
    session, _ = ssh_session(owner, sshd, jump_hosts=[hop])
    before = ssh_clients()

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await run_command(terminal, "echo up-$((1+1))", "up-2")
        clients = ssh_clients(besides=before)
        await terminal.control(type="terminate")
        await terminal.until_event("ended")
        return clients

    clients = async_to_sync(scenario)()
    assert len(clients) == 2
    _, alive = psutil.wait_procs(clients, timeout=10)
    assert not alive and not ssh_clients(besides=before)


def test_a_fast_targets_output_is_taken_in_reads_of_up_to_a_mebibyte(sshd):
    """A pipe of the default 64 KiB made a transfer cost sixteen reads and a joined copy per
    mebibyte (bench/README.md)."""

    async def scenario():
        shell = await open_shell(Route(Hop(host=sshd.host, port=sshd.port, username=sshd.user, password=sshd.password)))
        try:
            os.write(shell.fd, b"stty raw -echo; head -c 3000000 /dev/zero | tr '\\0' x; sleep 30\n")
            await asyncio.sleep(2)  # the client fills the pipe, then waits for it
            return len(os.read(shell.output, 4 * OUTPUT_PIPE_SIZE))
        finally:
            await asyncio.to_thread(shell.finish)
            shell.close_descriptors()

    assert async_to_sync(scenario)() > 512 * 1024


def test_names_reach_ssh_exactly_as_stored():
    """Spaces, ``%`` (which ssh_config expands in HostName) and option-like text in a hop's
    names are values, never options or tokens: ``ssh -G`` shows what the client will use."""
    from targets.openssh import _plan
    from targets.routes import Hop, Route

    jump = Hop(host="127.0.0.1", port=2222, username="ops team", password="not-used-here")
    target = Hop(host="db%h.internal", port=22, username="app%r -oProxyCommand=x", password="not-used-here")
    plan = _plan(Route(target=target, jumps=(jump,)), "127.0.0.1")
    try:
        shown = subprocess.run(
            ["ssh", "-G", "-F", str(plan.config), plan.target], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        assert "hostname db%h.internal" in shown and "user app%r -oProxyCommand=x" in shown
        assert not any(line.startswith("proxycommand") for line in shown)
        assert f"proxyjump {plan.aliases[0]}" in shown
        assert "escapechar none" in shown and "forwardagent no" in shown
    finally:
        plan.remove()


def test_what_a_dead_nodes_clients_left_is_removed_and_a_living_nodes_kept():
    from targets.openssh import RUN_DIR, _remove_orphaned_directories

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    base = Path(RUN_DIR or tempfile.gettempdir())
    dead = Path(tempfile.mkdtemp(prefix=f"pam-ssh-{gone.pid}-", dir=base))
    living = Path(tempfile.mkdtemp(prefix=f"pam-ssh-{os.getpid()}-", dir=base))
    (dead / "config").write_text("Host x\n")
    try:
        _remove_orphaned_directories.__wrapped__()
        assert not dead.exists() and living.exists()
    finally:
        for path in (dead, living):
            shutil.rmtree(path, ignore_errors=True)
