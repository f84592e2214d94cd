"""Stored credentials reach only the target and the account they were stored for.

Each test performs an attack through the API a user would meet, against a real OpenSSH sshd
(its own log tells whether a password was accepted) or a capturing SSH server that records
every password a client offers, and drives the terminal websocket through the real engine.
"""

import secrets
import socket
import threading

import paramiko
import pytest
from asgiref.sync import async_to_sync
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.admin.utils import quote
from django.db import connection as db
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from accounts.roles import Perm
from connections.models import Connection, JumpHop
from pam.fields import UnreadableSecret
from sessions.models import Session
from tests import targets
from tests.factories import make_address_book_folder, make_connection, make_role, make_user
from tests.sessions.helpers import Terminal

KEY = Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
).decode()

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def module_sshd(target_password):
    server = targets.Sshd(target_password).start()
    yield server
    server.remove()


@pytest.fixture
def own_sshd(module_sshd):
    """An sshd of this module's own; ``since_start()`` is its log written during the test."""
    start = len(module_sshd.log_text())
    module_sshd.since_start = lambda: module_sshd.log_text()[start:]
    return module_sshd


class CapturingSshServer:
    """An SSH server on 127.0.0.1 that refuses every login and records what was offered."""

    def __init__(self):
        self.offered = []  # (method, username, secret)
        self.host_key = paramiko.Ed25519Key.from_private_key_file(self._keyfile())
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _keyfile():
        import subprocess
        import tempfile

        path = tempfile.mktemp(prefix="pam-test-capture-")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
        return path

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            try:
                transport.start_server(server=_Recorder(self.offered))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()

    def close(self):
        self.sock.close()


class _Recorder(paramiko.ServerInterface):
    def __init__(self, offered):
        self.offered = offered

    def get_allowed_auths(self, username):
        return "password,publickey"

    def check_auth_none(self, username):
        self.offered.append(("none", username, ""))
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username, password):
        self.offered.append(("password", username, password))
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self.offered.append(("publickey", username, key.get_base64()))
        return paramiko.AUTH_FAILED


@pytest.fixture
def capture():
    server = CapturingSshServer()
    yield server
    server.close()


def signed_in(user):
    client = APIClient()
    client.force_login(user)
    return client


def attach_until_end(session_id, user, timeout=30):
    """Attach the owner's terminal and return the session's last event (active or ended)."""

    async def scenario():
        terminal = await Terminal.open(session_id, user)
        await terminal.until(
            lambda t: any(e.get("type") == "ended" or e.get("state") == "active" for e in t.events), timeout
        )
        await terminal.close()
        return terminal.events

    return async_to_sync(scenario)()


def run_in_terminal(session_id, user, command, expect):
    async def scenario():
        terminal = await Terminal.open(session_id, user)
        await terminal.until_event("status", state="active")
        await terminal.type(command + "\n")
        await terminal.until_output(expect)
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()


def accepted(sshd, user):
    return f"Accepted password for {user}" in sshd.since_start()


# --- 2. a connect-time username never gets the stored password ---------------------------------


@pytest.fixture
def deploy_entry(own_sshd):
    """A shared connection stored for 'deploy', whose password also opens the target's account
    (passwords reused across accounts are what the attack needs)."""
    admin = make_user("admin")
    return make_connection(
        admin, "deploy-box", host=own_sshd.host, port=own_sshd.port, username="deploy",
        password=own_sshd.password, shared=True,
    )


def test_operator_cannot_connect_as_another_user_with_the_stored_password(own_sshd, deploy_entry):
    operator = make_user("operator")
    response = signed_in(operator).post(
        f"/api/connections/{deploy_entry.pk}/connect", {"username": own_sshd.user}, format="json"
    )
    assert response.status_code == 400
    assert "password" in response.json()["error"] and own_sshd.password not in response.content.decode()
    assert Session.objects.count() == 0
    assert not accepted(own_sshd, own_sshd.user)


def test_operator_cannot_connect_an_address_book_entry_as_another_user(own_sshd, target_password):
    folder = make_address_book_folder("prod", groups=["ops"])
    make_connection(
        None, "deploy-box", group=folder, host=own_sshd.host, port=own_sshd.port, username="deploy",
        password=target_password,
    )
    operator = make_user("operator", groups=["ops"])
    response = signed_in(operator).post(
        "/api/addressbook/folders/shared/prod/entries/deploy-box/connect", {"username": own_sshd.user}, format="json"
    )
    assert response.status_code == 400 and Session.objects.count() == 0


def test_a_session_naming_another_user_never_sends_the_stored_password(own_sshd, deploy_entry):
    """Whatever opened the session, the one place credentials are merged keeps stored secrets
    for the stored username: the engine reaches sshd with nothing to offer."""
    operator = make_user("operator")
    session = Session.objects.create(
        owner=operator, connection=deploy_entry, session_type="ssh", host=own_sshd.host, port=own_sshd.port,
        username=own_sshd.user, secrets='{"prompted": false}',
    )
    events = attach_until_end(session.pk, operator)
    ended = next(e for e in events if e.get("type") == "ended")
    assert ended["status"] == "failed" and "No credentials" in ended["message"]
    assert not accepted(own_sshd, own_sshd.user)


def test_another_user_with_a_typed_password_connects(own_sshd, deploy_entry):
    operator = make_user("operator")
    response = signed_in(operator).post(
        f"/api/connections/{deploy_entry.pk}/connect",
        {"username": own_sshd.user, "password": own_sshd.password},
        format="json",
    )
    assert response.status_code == 201
    session = Session.objects.get()
    assert session.username == own_sshd.user
    run_in_terminal(session.pk, operator, "echo typed-$((5*5))", "typed-25")
    assert accepted(own_sshd, own_sshd.user)


# --- 3. moving a target drops the stored secrets of whoever may not read them -----------------


def test_poweruser_moving_a_connection_does_not_send_its_password_to_the_new_host(own_sshd, capture):
    owner = make_user("poweruser")
    client = signed_in(owner)
    conn = make_connection(owner, host=own_sshd.host, port=own_sshd.port, username=own_sshd.user, password=own_sshd.password)
    response = client.put(f"/api/connections/{conn.pk}", {"host": "127.0.0.1", "port": capture.port}, format="json")
    assert response.status_code == 200
    attempt = client.post(f"/api/connections/{conn.pk}/connect", {}, format="json")
    if attempt.status_code == 201:  # what a kept password would do: follow the connection there
        attach_until_end(attempt.json()["session_id"], owner)
    assert own_sshd.password not in {secret for _, _, secret in capture.offered}
    assert attempt.status_code == 400 and Session.objects.count() == 0
    assert client.get(f"/api/connections/{conn.pk}").json()["hasPassword"] is False
    assert Connection.objects.get(pk=conn.pk).password == ""
    # Typed at connect time, a password goes where the user sends it; the stored one never did.
    opened = client.post(f"/api/connections/{conn.pk}/connect", {"password": "typed-at-connect"}, format="json")
    assert opened.status_code == 201
    attach_until_end(opened.json()["session_id"], owner)
    assert ("password", own_sshd.user, "typed-at-connect") in capture.offered
    assert own_sshd.password not in {secret for _, _, secret in capture.offered}


def test_credentials_entered_with_the_move_are_kept(capture):
    owner = make_user("poweruser")
    client = signed_in(owner)
    conn = make_connection(owner, host="127.0.0.1", port=22, username="deploy", password="old-secret")
    body = {"host": "127.0.0.1", "port": capture.port, "password": "re-entered-secret"}
    assert client.put(f"/api/connections/{conn.pk}", body, format="json").status_code == 200
    opened = client.post(f"/api/connections/{conn.pk}/connect", {}, format="json")
    assert opened.status_code == 201
    attach_until_end(opened.json()["session_id"], owner)
    assert ("password", "deploy", "re-entered-secret") in capture.offered
    assert "old-secret" not in {secret for _, _, secret in capture.offered}


@pytest.mark.parametrize("change", [{"port": 2222}, {"type": "telnet"}, {"hostname": "127.0.0.2"}, {"username": "root"}])
def test_address_book_manager_without_reveal_loses_the_stored_secret_on_a_move(change):
    role = make_role("book-keeper", {Perm.ADDRESSBOOK_VIEW, Perm.ADDRESSBOOK_MANAGE, Perm.SESSIONS_CONNECT})
    keeper = make_user(role.name)
    folder = make_address_book_folder("prod")
    entry = make_connection(None, "db-01", group=folder, host="127.0.0.1", port=22, username="deploy", password="entry-pw")
    url = "/api/addressbook/folders/shared/prod/entries/db-01"
    response = signed_in(keeper).put(url, change, format="json")
    assert response.status_code == 200 and response.json()["has_password"] is False
    assert Connection.objects.get(pk=entry.pk).password == ""


def book_keeper():
    return make_user(make_role("book-keeper", {Perm.ADDRESSBOOK_VIEW, Perm.ADDRESSBOOK_MANAGE}).name)


@pytest.mark.parametrize(
    "protocol, change",
    [
        ("rdp", {"domain": "OTHER"}),  # another account: OTHER\deploy
        ("rdp", {"security": "rdp"}),
        ("rdp", {"kdc_url": "https://127.0.0.1:8443/KdcProxy"}),
        ("rdp", {"ignore_cert": True}),
        ("web", {"ignore_cert": True}),
        ("web", {"allowed_domains": ["127.0.0.1", "127.0.0.9"]}),
    ],
)
def test_weakening_how_stored_secrets_are_sent_drops_them_without_reveal(protocol, change):
    target = {"url": "https://127.0.0.1/login"} if protocol == "web" else {"host": "127.0.0.1", "port": 3389}
    entry = make_connection(
        None, "box", group=make_address_book_folder("prod"), protocol=protocol, username="deploy", password="entry-pw",
        autofill='[{"url": "https://127.0.0.1/login", "username": "deploy", "password": "fill-pw"}]',
        extra_config={"domain": "CORP", "security": "nla", "allowed_domains": ["127.0.0.1"]}, **target,
    )
    response = signed_in(book_keeper()).put("/api/addressbook/folders/shared/prod/entries/box", change, format="json")
    assert response.status_code == 200
    stored = Connection.objects.get(pk=entry.pk)
    assert (stored.password, stored.autofill) == ("", "")
    assert "dropped stored" in AuditEvent.objects.filter(action="connection.updated").get().details


@pytest.mark.parametrize(
    "fields, change",
    [
        ({"protocol": "web", "url": "https://127.0.0.1/", "host": "127.0.0.5"}, {"host": "", "displayName": "W"}),
        ({"extra_config": {"domain": "CORP"}}, {"extraConfig": {}}),  # an RDP option on SSH sends nothing
        ({"extra_config": {"resolution": "800x600"}, "protocol": "rdp"}, {"extraConfig": {"resolution": "1024x768"}}),
    ],
)
def test_changes_that_do_not_move_the_target_keep_its_secrets(fields, change):
    role = make_role("editor", {Perm.CONNECTIONS_EDIT_ANY, Perm.ADDRESSBOOK_VIEW})
    conn = make_connection(make_user("poweruser"), username="deploy", password="kept-pw", **fields)
    response = signed_in(make_user(role.name)).put(f"/api/connections/{conn.pk}", change, format="json")
    assert response.status_code == 200, response.content
    assert Connection.objects.get(pk=conn.pk).password == "kept-pw"


def test_a_jump_host_put_in_front_of_an_entry_never_receives_its_secret(own_sshd, target_password):
    """The attack: someone who manages the address book but may not read its secrets puts a jump
    host of their own in front of an entry. Through it, "127.0.0.1:<port>" is another machine,
    theirs; the next operator's session would sign in over there with the stored password."""
    theirs = targets.Elsewhere(target_password, own_sshd.port).start()
    try:
        folder = make_address_book_folder("prod", groups=["ops"])
        entry = make_connection(None, "db-01", group=folder, host=own_sshd.host, port=own_sshd.port,
                                username=own_sshd.user, password=own_sshd.password)
        hop = {"hostname": theirs.jump.host, "port": theirs.jump.port, "username": theirs.jump.user,
               "password": theirs.jump.password}
        url = "/api/addressbook/folders/shared/prod/entries/db-01"
        response = signed_in(book_keeper()).put(url, {"jump_hosts": [hop]}, format="json")
        assert response.status_code == 200 and response.json()["has_password"] is False

        operator = make_user("operator", groups=["ops"])
        attempt = signed_in(operator).post(f"/api/connections/{entry.pk}/connect", {}, format="json")
        if attempt.status_code == 201:  # what a kept password would do: sign in over there
            attach_until_end(attempt.json()["session_id"], operator)
        assert f"Accepted password for {theirs.target.user}" not in theirs.target.log_text()
        assert attempt.status_code == 400 and Connection.objects.get(pk=entry.pk).password == ""
    finally:
        theirs.remove()


def test_replacing_the_first_jump_host_drops_the_secrets_of_the_hops_behind_it():
    role = make_role("editor", {Perm.CONNECTIONS_EDIT_ANY, Perm.ADDRESSBOOK_VIEW})
    conn = make_connection(make_user("poweruser"), host="127.0.0.1", username="deploy", password="target-pw")
    for position, host in enumerate(["127.0.0.2", "127.0.0.3"]):
        JumpHop.objects.create(connection=conn, position=position, host=host, username="hop", password=f"hop{position}-pw")
    chain = [{"host": "127.0.0.9", "username": "evil", "password": "x"}, {"host": "127.0.0.3", "username": "hop"}]
    response = signed_in(make_user(role.name)).put(f"/api/connections/{conn.pk}", {"jumpHosts": chain}, format="json")
    assert response.status_code == 200
    assert [(h.host, h.password) for h in conn.jump_hops.all()] == [("127.0.0.9", "x"), ("127.0.0.3", "")]
    assert Connection.objects.get(pk=conn.pk).password == ""


def test_an_unchanged_jump_chain_keeps_every_secret():
    role = make_role("editor", {Perm.CONNECTIONS_EDIT_ANY, Perm.ADDRESSBOOK_VIEW})
    conn = make_connection(make_user("poweruser"), host="127.0.0.1", username="deploy", password="target-pw")
    JumpHop.objects.create(connection=conn, position=0, host="127.0.0.2", port=2222, username="hop", password="hop-pw")
    chain = [{"host": "127.0.0.2", "port": 2222, "username": "hop"}]
    body = {"jumpHosts": chain, "displayName": "Renamed"}
    assert signed_in(make_user(role.name)).put(f"/api/connections/{conn.pk}", body, format="json").status_code == 200
    assert [h.password for h in conn.jump_hops.all()] == ["hop-pw"]
    assert Connection.objects.get(pk=conn.pk).password == "target-pw"


def test_address_book_manager_keeps_the_secret_when_the_target_stays():
    role = make_role("book-keeper", {Perm.ADDRESSBOOK_VIEW, Perm.ADDRESSBOOK_MANAGE})
    entry = make_connection(
        None, "db-01", group=make_address_book_folder("prod"), host="127.0.0.1", username="deploy", password="entry-pw"
    )
    url = "/api/addressbook/folders/shared/prod/entries/db-01"
    response = signed_in(make_user(role.name)).put(url, {"display_name": "Database", "port": 22}, format="json")
    assert response.status_code == 200 and response.json()["has_password"] is True
    assert Connection.objects.get(pk=entry.pk).password == "entry-pw"


def test_holder_of_the_reveal_permission_keeps_the_secret_on_a_move(capture):
    admin = make_user("admin")
    conn = make_connection(make_user("poweruser"), host="127.0.0.1", port=22, username="deploy", password="kept-pw")
    response = signed_in(admin).put(f"/api/connections/{conn.pk}", {"port": capture.port}, format="json")
    assert response.status_code == 200
    assert Connection.objects.get(pk=conn.pk).password == "kept-pw"


def test_admin_site_without_reveal_cannot_move_a_connection_away_with_its_secret():
    role = make_role("site-editor", {Perm.ADMIN_SITE, Perm.CONNECTIONS_EDIT_ANY})
    editor = make_user(role.name)
    conn = make_connection(make_user("poweruser"), host="127.0.0.1", port=22, username="deploy", password="site-pw",
                           private_key=KEY, autofill='[{"selector": "#pw", "value": "fill-pw"}]')
    JumpHop.objects.create(connection=conn, position=0, host="127.0.0.2", username="hop", password="hop-pw")
    client = signed_in(editor)
    page = client.get(reverse("admin:connections_connection_change", args=[quote(conn.pk)]))
    shown = page.content.decode()
    assert page.status_code == 200 and "readonly" in shown and "deploy" in shown
    for secret in ("site-pw", "fill-pw", "hop-pw", KEY.splitlines()[1]):
        assert secret not in shown
    assert shown.count(">stored<") == 4  # password, key, autofill, the hop's password
    hop_page = client.get(reverse("admin:connections_jumphop_change", args=[quote(conn.jump_hops.get().pk)])).content.decode()
    assert "hop" in hop_page and "hop-pw" not in hop_page
    form = {
        "name": conn.name, "protocol": "ssh", "host": "127.0.0.1", "port": "2200", "username": "deploy",
        "password": "", "private_key": "", "autofill": "", "sort_order": "0", "recording_enabled": "on",
        "tunnels": "[]", "extra_config": "{}",
        **{f"{p}-{k}": v for p in ("tag_set", "jump_hops", "shares")
           for k, v in {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0", "MIN_NUM_FORMS": "0", "MAX_NUM_FORMS": "1000"}.items()},
    }
    response = client.post(reverse("admin:connections_connection_change", args=[quote(conn.pk)]), form)
    assert response.status_code == 403
    stored = Connection.objects.get(pk=conn.pk)
    assert stored.port == 22 and stored.password == "site-pw"


# --- 6. a ciphertext moved to another row does not open ----------------------------------------


def swap_passwords(first, second):
    with db.cursor() as cursor:
        cursor.execute("SELECT id, password FROM connections_connection WHERE id IN (%s, %s)", [first.pk, second.pk])
        stored = dict(cursor.fetchall())
        cursor.execute("UPDATE connections_connection SET password = %s WHERE id = %s", [stored[second.pk], first.pk])
        cursor.execute("UPDATE connections_connection SET password = %s WHERE id = %s", [stored[first.pk], second.pk])


def test_a_ciphertext_swapped_after_connect_fails_the_session_and_reaches_nobody(own_sshd):
    admin = make_user("admin")
    right = make_connection(admin, "right", host=own_sshd.host, port=own_sshd.port, username=own_sshd.user,
                            password=own_sshd.password, shared=True)
    wrong = make_connection(admin, "wrong", host=own_sshd.host, port=own_sshd.port, username=own_sshd.user,
                            password="another-" + secrets.token_hex(4), shared=True)
    operator = make_user("operator")
    response = signed_in(operator).post(f"/api/connections/{right.pk}/connect", {}, format="json")
    assert response.status_code == 201
    swap_passwords(right, wrong)

    async def scenario():
        terminal = await Terminal.open(response.json()["session_id"], operator)
        ended = await terminal.until_event("ended")
        assert ended["status"] == "failed" and "cannot be read" in ended["message"]
        assert own_sshd.password.encode() not in terminal.output and own_sshd.password not in str(terminal.events)

    async_to_sync(scenario)()
    assert Session.objects.get().status == "failed"
    assert not accepted(own_sshd, own_sshd.user)


def test_a_session_opened_before_its_connection_moved_never_gets_the_new_password(own_sshd, capture):
    """The new password belongs to the new target: a session still waiting to start must not
    carry it to the old one."""
    admin, operator = make_user("admin"), make_user("operator")
    conn = make_connection(admin, "db", host=own_sshd.host, port=own_sshd.port, username=own_sshd.user,
                           password="old-" + secrets.token_hex(4), shared=True)
    response = signed_in(operator).post(f"/api/connections/{conn.pk}/connect", {}, format="json")
    assert response.status_code == 201
    moved = {"port": capture.port, "password": own_sshd.password}
    assert signed_in(admin).put(f"/api/connections/{conn.pk}", moved, format="json").status_code == 200

    async def scenario():
        terminal = await Terminal.open(response.json()["session_id"], operator)
        ended = await terminal.until_event("ended")
        assert ended["status"] == "failed" and "changed since this session was opened" in ended["message"]

    async_to_sync(scenario)()
    assert not accepted(own_sshd, own_sshd.user) and capture.offered == []


def test_swapped_password_ciphertexts_are_refused_not_used(own_sshd):
    admin = make_user("admin")
    right = make_connection(admin, "right", host=own_sshd.host, port=own_sshd.port, username=own_sshd.user,
                            password=own_sshd.password, shared=True)
    wrong = make_connection(admin, "wrong", host=own_sshd.host, port=own_sshd.port, username=own_sshd.user,
                            password="another-" + secrets.token_hex(4), shared=True)
    swap_passwords(right, wrong)
    for row in Connection.objects.filter(pk__in=[right.pk, wrong.pk]):
        with pytest.raises(UnreadableSecret, match="cannot be read"):
            row.password
    operator = signed_in(make_user("operator"))
    for conn in (right, wrong):
        assert operator.get(f"/api/connections/{conn.pk}").status_code == 200  # listing never opens secrets
        response = operator.post(f"/api/connections/{conn.pk}/connect", {}, format="json")
        assert response.status_code == 409
        assert "cannot be read" in response.json()["error"] and own_sshd.password not in response.content.decode()
    assert Session.objects.count() == 0
    assert not accepted(own_sshd, own_sshd.user)
    # Entering the password again repairs the row.
    assert signed_in(admin).put(f"/api/connections/{wrong.pk}", {"password": own_sshd.password}, format="json").status_code == 200
    response = operator.post(f"/api/connections/{wrong.pk}/connect", {}, format="json")
    assert response.status_code == 201
    run_in_terminal(response.json()["session_id"], Session.objects.get().owner, "echo repaired-$((3*4))", "repaired-12")
