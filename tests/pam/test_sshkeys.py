"""Private keys above 4,096-bit RSA are refused from their structure, before any load: loading a
12,288-bit key took 15 s, and four at once froze the server. Every API path that takes a key is
tried with one, and the key loaders are watched to prove none of them was reached."""

import asyncio
import base64
import subprocess

import paramiko
import pytest
from asgiref.sync import async_to_sync
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.admin.utils import quote
from django.urls import reverse

from connections.models import Connection, JumpHop
from pam.sshkeys import KEY_CLASSES, MAX_KEY_TEXT, InvalidKey, check_key_size, load_private_key
from sessions.models import Session
from sessions.services.sessions import create_session
from targets.routes import Hop, Route
from targets.ssh import AuthFailed, open_chain
from tests.factories import make_address_book_folder, make_connection, make_user
from tests.sessions.helpers import Terminal

pytestmark = pytest.mark.django_db

SSH = {"name": "big-key", "protocol": "ssh", "host": "127.0.0.1", "port": 22, "username": "root"}
BOOK = "/api/addressbook/folders/shared/keys/entries"


def _private_text(key, private_format):
    return key.private_bytes(serialization.Encoding.PEM, private_format, serialization.NoEncryption()).decode()


@pytest.fixture(scope="session")
def huge_rsa_key():
    """One 12,288-bit RSA key for the whole run (generating it takes seconds)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=12288)


@pytest.fixture(scope="session")
def huge_key(huge_rsa_key):
    """The 12,288-bit key in OpenSSH format, as a client would paste it."""
    return _private_text(huge_rsa_key, serialization.PrivateFormat.OpenSSH)


@pytest.fixture
def key_loads(monkeypatch):
    """Every call that would load a key (the expensive part); each call is refused at once."""
    calls = []

    def watched(cls, file_obj, password=None):
        calls.append(cls.__name__)
        raise paramiko.SSHException("not loaded in this test")

    for key_class in KEY_CLASSES:
        monkeypatch.setattr(key_class, "from_private_key", classmethod(watched))
    return calls


# --- the check itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "private_format", [serialization.PrivateFormat.OpenSSH, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_rsa_key_of_allowed_size_loads(private_format):
    text = _private_text(rsa.generate_private_key(public_exponent=65537, key_size=2048), private_format)
    assert load_private_key(text).get_bits() == 2048


@pytest.mark.parametrize(
    "private_format",
    [
        serialization.PrivateFormat.OpenSSH,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.PrivateFormat.PKCS8,
    ],
)
def test_oversized_rsa_key_is_refused_without_loading(huge_rsa_key, key_loads, private_format):
    text = _private_text(huge_rsa_key, private_format)
    assert len(text) <= MAX_KEY_TEXT  # refused for its modulus, not its length
    with pytest.raises(InvalidKey, match="at most 4096 bits"):
        load_private_key(text)
    assert key_loads == []


def test_oversized_key_text_is_refused_without_loading(ssh_key, key_loads):
    padded = ssh_key.replace("-----END", "\n" * MAX_KEY_TEXT + "-----END")
    with pytest.raises(InvalidKey, match="too long"):
        load_private_key(padded)
    assert key_loads == []


def test_rsa_numbers_under_another_key_type_are_measured(huge_key):
    """paramiko's RSA loader reads six numbers whatever type the key names: renaming is no way round."""
    renamed = _rename_openssh_key_type(huge_key, b"ssh-ed25519")
    with pytest.raises(InvalidKey, match="at most 4096 bits"):
        check_key_size(renamed)


def _rename_openssh_key_type(text, new_type):
    """The same openssh-key-v1 key with another type name in its private section."""
    blob = base64.b64decode("".join(text.strip().splitlines()[1:-1]))
    fields, at = [], len(b"openssh-key-v1\0")
    for size in (None, None, None, 4, None, None):  # cipher, kdf, kdf options, count, public, private
        if size is None:
            size = int.from_bytes(blob[at : at + 4], "big")
            at += 4
        fields.append(blob[at : at + size])
        at += size
    private = fields[5]
    type_length = int.from_bytes(private[8:12], "big")
    fields[5] = private[:8] + _ssh_string(new_type) + private[12 + type_length :]
    rebuilt = b"openssh-key-v1\0" + b"".join(
        field if index == 3 else _ssh_string(field) for index, field in enumerate(fields)
    )
    encoded = base64.b64encode(rebuilt).decode()
    lines = [encoded[i : i + 70] for i in range(0, len(encoded), 70)]
    return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END OPENSSH PRIVATE KEY-----\n"


def _ssh_string(data):
    return len(data).to_bytes(4, "big") + data


def test_every_key_block_of_the_text_is_measured(ssh_key, huge_rsa_key, key_loads):
    text = ssh_key + _private_text(huge_rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    with pytest.raises(InvalidKey, match="at most 4096 bits"):
        load_private_key(text)
    assert key_loads == []


def test_legacy_encrypted_pem_is_refused_as_passphrase_protected():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    text = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    with pytest.raises(InvalidKey, match="Passphrase-protected"):
        load_private_key(text)


def test_ed25519_key_still_loads(ssh_key):
    assert isinstance(load_private_key(ssh_key), paramiko.Ed25519Key)


# --- every API path that takes a key ---------------------------------------------------------


def _hop(key, **fields):
    return {"host": "127.0.0.2", "username": "hop", "privateKey": key, **fields}


API_PATHS = [
    ("post", "/api/connections", lambda key: {**SSH, "privateKey": key}, "privateKey"),
    ("post", "/api/connections", lambda key: {**SSH, "jumpHosts": [_hop(key)]}, "jumpHosts[0].privateKey"),
    ("put", "/api/connections/{id}", lambda key: {"privateKey": key}, "privateKey"),
    ("put", "/api/connections/{id}", lambda key: {"jumpHosts": [_hop(key)]}, "jumpHosts[0].privateKey"),
    (
        "post",
        "/api/connections/import",
        lambda key: {"version": 1, "connections": [{**SSH, "privateKey": key}]},
        "privateKey",
    ),
    ("post", BOOK, lambda key: {"name": "big", "type": "ssh", "hostname": "127.0.0.1", "private_key": key}, "private_key"),
    (
        "put",
        f"{BOOK}/entry",
        lambda key: {"jump_hosts": [{"hostname": "127.0.0.2", "username": "hop", "private_key": key}]},
        "jump_hosts[0].private_key",
    ),
    ("post", "/api/sessions", lambda key: {"session_type": "ssh", "hostname": "127.0.0.1", "private_key": key}, "private_key"),
    (
        "post",
        "/api/sessions",
        lambda key: {
            "session_type": "ssh",
            "hostname": "127.0.0.1",
            "jump_hosts": [{"hostname": "127.0.0.2", "username": "hop", "private_key": key}],
        },
        "jump_hosts[0].private_key",
    ),
    (
        "post",
        "/api/sessions",
        lambda key: {"session_type": "ssh", "hostname": "127.0.0.1", "jump_host": "127.0.0.2", "jump_username": "hop",
                     "jump_private_key": key},
        "private_key",
    ),
]


@pytest.mark.parametrize("method, path, body, field", API_PATHS)
def test_api_refuses_an_oversized_rsa_key_without_loading_it(client_as, huge_key, key_loads, method, path, body, field):
    client = client_as("admin")
    connection = make_connection(client.user, "existing", password="pw")
    make_connection(None, "entry", group=make_address_book_folder("keys"), password="pw")
    before = (Connection.objects.count(), JumpHop.objects.count(), Session.objects.count())
    response = getattr(client, method)(path.format(id=connection.pk), body(huge_key), format="json")
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert field in error and "at most 4096 bits" in error
    assert key_loads == []
    assert (Connection.objects.count(), JumpHop.objects.count(), Session.objects.count()) == before
    assert Connection.objects.get(pk=connection.pk).private_key == ""


def test_admin_form_refuses_an_oversized_rsa_key_without_loading_it(admin_client, huge_key, key_loads):
    from tests.connections.test_admin import _form

    connection = make_connection(admin_client.user, "admin-form")
    url = reverse("admin:connections_connection_change", args=[quote(connection.pk)])
    response = admin_client.post(url, _form(connection, private_key=huge_key))
    assert response.status_code == 200 and "at most 4096 bits" in response.content.decode()
    assert key_loads == []
    assert Connection.objects.get(pk=connection.pk).private_key == ""


def test_stored_oversized_key_fails_the_connection_without_loading_it(sshd, huge_key, key_loads):
    """A key stored before this limit reaches the SSH client as a clear refusal, not a 15 s load."""
    with pytest.raises(AuthFailed, match="at most 4096 bits"):
        open_chain(Route(Hop(host=sshd.host, port=sshd.port, username=sshd.user, private_key=huge_key)))
    assert key_loads == []


@pytest.mark.django_db(transaction=True)
def test_web_terminal_loads_its_key_off_the_event_loop(sshd, tmp_path, monkeypatch):
    """The engine loads a session's key in a worker thread: a slow load never stalls other sessions."""
    key_file = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    sshd.authorize(key_file.with_suffix(".pub").read_text())
    owner = make_user("poweruser")
    session, _ = create_session(
        actor=owner, session_type="ssh", host=sshd.host, port=sshd.port, username=sshd.user,
        private_key=key_file.read_text(),
    )
    loaded_on = []
    original = paramiko.Ed25519Key.from_private_key.__func__

    def watched(cls, file_obj, password=None):
        try:
            asyncio.get_running_loop()
            loaded_on.append("event loop")
        except RuntimeError:
            loaded_on.append("worker thread")
        return original(cls, file_obj, password)

    monkeypatch.setattr(paramiko.Ed25519Key, "from_private_key", classmethod(watched))

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until_event("status", state="active")
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()
    assert loaded_on == ["worker thread"]
