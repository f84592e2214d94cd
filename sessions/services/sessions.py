"""Sessions: open one (ad hoc, from a saved connection, from an address-book entry), end one.

Opening a session only records what to connect to; the target is reached when the terminal
attaches (sessions.runtime), on whichever node serves that websocket. Credentials given for one
session (ad hoc, or prompted at connect time) are kept encrypted on the session until then and
wiped once used; a saved connection's credentials are read from the connection, never copied.
"""

import hashlib
import json
import secrets as random_secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.db import transaction

from accounts.choices import AuditAction
from accounts.permissions import can
from accounts.roles import Perm
from accounts.services.audit import record_event
from connections.choices import DEFAULT_PORTS, Protocol
from connections.models import Connection
from connections.services.routes import jump_hops, stored_credentials
from pam.exceptions import Conflict, Forbidden, InvalidInput, ServiceError
from pam.fields import is_set
from pam.sshkeys import InvalidKey, load_private_key
from sessions import policy
from sessions.choices import AuthMethod, SessionType, ShareMode
from sessions.models import Session
from sessions.runtime import messages
from sessions.transports import available_types, transport_class
from targets.addresses import check_literal
from targets.routes import Hop, Route

SHARE_KEY_BYTES = 24
MAX_HOPS = 8
# A saved connection's protocol and the session type that opens it in the browser.
SESSION_TYPE_OF = {
    Protocol.SSH: SessionType.SSH,
    Protocol.SFTP: SessionType.SSH,
    Protocol.TELNET: SessionType.TELNET,
    Protocol.RDP: SessionType.RDP,
    Protocol.VNC: SessionType.VNC,
    Protocol.WEB: SessionType.WEB,
}


def share_digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


def share_key_matches(session, key):
    return bool(key) and policy.holds_link(session, share_digest(key))


def generate_keypair():
    """Return ``(private OpenSSH PEM, public OpenSSH line)`` of a new Ed25519 key."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode() + " pam-ephemeral"


def _check_key(text, field):
    if text:
        try:
            load_private_key(text)
        except InvalidKey as exc:
            raise InvalidInput(str(exc), field=field) from None


def _transport(session_type):
    """What opens ``session_type`` (sessions.transports); a 400 when nothing here does."""
    transport = transport_class(session_type)
    if transport is None:
        opened = " and ".join(available_types())
        raise InvalidInput(
            f"{session_type} sessions are not available yet; this installation opens {opened} sessions.",
            field="session_type",
        )
    return transport


def _check_target(session_type, host, port, hops):
    transport = _transport(session_type)
    if not host:
        raise InvalidInput("A hostname is required.", field="host")
    check_literal(host, port)
    if len(hops) > MAX_HOPS:
        raise InvalidInput(f"At most {MAX_HOPS} jump hosts.", field="jump_hosts")
    if hops and not transport.jump_hosts:
        # Its transport reaches targets directly: refuse a chain rather than skip it unseen.
        raise InvalidInput(f"Jump hosts are not available for {session_type} sessions yet.", field="jump_hosts")
    for index, hop in enumerate(hops):
        try:
            check_literal(hop["host"], hop.get("port") or 22)
            _check_key(hop.get("private_key"), "private_key")
        except ServiceError as exc:
            raise InvalidInput(exc.message, field=f"jump_hosts[{index}].{exc.field or 'hostname'}") from None


def _create(*, actor, connection, session_type, host, port, username, secret_fields, hops, options, ip):
    private_key, public_key = "", ""
    if options.pop("generate_keypair", False):
        if not _transport(session_type).private_keys:
            raise InvalidInput("An ephemeral keypair is only for ssh sessions.", field="generate_keypair")
        private_key, public_key = generate_keypair()
        secret_fields = {**secret_fields, "private_key": private_key}
    share_key = random_secrets.token_urlsafe(SHARE_KEY_BYTES)
    banner = options.pop("banner", "") or ""
    auth_method = _auth_method(connection, secret_fields, ephemeral=bool(public_key))
    session = Session(
        owner=actor,
        connection=connection,
        session_type=session_type,
        host=host,
        port=port,
        username=username,
        jump_chain=[f"{h['username']}@{h['host']}:{h.get('port') or 22}" for h in hops],
        secrets=json.dumps({**secret_fields, "hops": hops}) if (secret_fields or hops) else "",
        public_key=public_key,
        auth_method=auth_method,
        banner=banner,
        share_digest=share_digest(share_key),
        client_ip=ip,
        **options,
    )
    with transaction.atomic():
        session.save(force_insert=True)
        record_event(
            action=AuditAction.SESSION_CREATED,
            user=actor,
            object_type="session",
            object_name=str(session.pk),
            ip=ip,
            details=f"{session_type} {session.target}" + (f" via {', '.join(session.jump_chain)}" if hops else ""),
        )
    return session, share_key


def _auth_method(connection, secret_fields, *, ephemeral):
    """How the target will be signed in to: for the trail, decided before secrets are wiped."""
    if ephemeral:
        return AuthMethod.EPHEMERAL_KEY
    if secret_fields.get("private_key"):
        return AuthMethod.PUBLIC_KEY
    if secret_fields.get("password"):
        return AuthMethod.PASSWORD
    if connection is not None and not secret_fields.get("prompted"):
        if is_set(connection, "private_key"):
            return AuthMethod.PUBLIC_KEY
        if is_set(connection, "password"):
            return AuthMethod.PASSWORD
    return AuthMethod.NONE


def create_session(*, actor, session_type, host="", port=None, username="", password="", private_key="",
                   jump_hosts=(), ip=None, **options):
    """Open an ad-hoc session (session-broker POST /api/sessions): poweruser and above."""
    if not can(actor, Perm.SESSIONS_CREATE):
        raise Forbidden("Ad-hoc sessions need the sessions.create permission (poweruser or higher).")
    port = port or DEFAULT_PORTS.get(session_type, 22)
    hops = [dict(h) for h in jump_hosts]
    _check_target(session_type, host, port, hops)
    _check_key(private_key, "private_key")
    if private_key and not _transport(session_type).private_keys:
        raise InvalidInput("A private key is only for ssh sessions.", field="private_key")
    secret_fields = {k: v for k, v in {"password": password, "private_key": private_key}.items() if v}
    return _create(
        actor=actor, connection=None, session_type=session_type, host=host, port=port, username=username,
        secret_fields=secret_fields, hops=hops, options=options, ip=ip,
    )


def is_other_account(connection, username):
    """A connect-time username naming another account than the stored one."""
    return bool(username) and username != connection.username


def needs_credentials(connection, username=""):
    """session-broker: an entry with prompt_credentials or no stored secret asks at connect time,
    and so does connecting as another account than the stored one (``username``): stored
    secrets are never combined with a username typed at connect time."""
    stored = is_set(connection, "password") or is_set(connection, "private_key")
    return connection.prompt_credentials or not stored or is_other_account(connection, username)


def connect_connection(*, actor, connection, username=None, password=None, ip=None, **options):
    """Open a session on a saved connection or address-book entry the actor may use.

    ``username``/``password`` given here are for this session only and never stored on the
    connection; another username than the stored one needs its own password (a 400 without
    one). Stored credentials that cannot be read refuse the session at once (a 409). Jump-host
    credentials always come from the connection.
    """
    if not can(actor, Perm.SESSIONS_CONNECT):
        raise Forbidden("Opening sessions needs the sessions.connect permission (operator or higher).")
    if not Connection.objects.usable_by(actor).filter(pk=connection.pk).exists():
        raise Forbidden("This connection is not available to you.")
    session_type = SESSION_TYPE_OF.get(connection.protocol)
    if session_type is None:
        raise InvalidInput(f"{connection.get_protocol_display()} connections cannot be opened as sessions.")
    host, port = connection.endpoint()
    _check_target(session_type, host, port, [])
    if not _transport(session_type).jump_hosts and connection.jump_hops.exists():
        raise InvalidInput(f"Jump hosts are not available for {session_type} sessions yet.", field="jump_hosts")
    prompted = {k: v for k, v in {"password": password}.items() if v}
    if needs_credentials(connection, username) and not prompted:
        if is_other_account(connection, username):
            raise InvalidInput(
                "Connecting as another user than the stored one needs that user's password: "
                "stored credentials are only used for the stored username.",
                field="password",
            )
        raise InvalidInput("This connection asks for credentials at connect time.", field="password")
    # Credentials that no longer open refuse the session now (409), not when the terminal attaches.
    if not prompted:
        stored_credentials(connection)
    jump_hops(connection)
    options.setdefault("recording_enabled", connection.recording_enabled)
    options.setdefault("banner", connection.display_name and f"Connected to {connection.display_name}")
    for flag in ("enable_drive", "disable_copy", "disable_paste"):
        options.setdefault(flag, bool(connection.extra_config.get(flag, False)))
    return _create(
        actor=actor,
        connection=connection,
        session_type=session_type,
        host=host,
        port=port,
        username=username or connection.username,
        secret_fields={**prompted, "prompted": bool(prompted)},
        hops=[],
        options=options,
        ip=ip,
    )


def route_for(session):
    """Everything needed to reach the target: the session's own secrets, else the connection's.

    The one place stored credentials meet connect-time overrides: they are used only for the
    stored username, never for another account named at connect time. A session on a
    connection goes through the connection's jump hosts as they are stored now; an ad-hoc
    session through its own.
    """
    own = json.loads(session.secrets) if session.secrets else {}
    connection = session.connection
    jumps = [Hop.from_mapping(hop) for hop in own.get("hops", [])]
    if connection is not None:
        # Its stored credentials now belong to where it points now, not where it pointed.
        if (session.host, session.port) != connection.endpoint():
            raise Conflict("The connection was changed since this session was opened: open it again.")
        if not own.get("prompted") and session.username == connection.username:
            for name, value in stored_credentials(connection).items():
                own.setdefault(name, value)
        jumps = jump_hops(connection)
    target = Hop(
        host=session.host, port=session.port, username=session.username,
        password=own.get("password") or "", private_key=own.get("private_key") or "",
    )
    return Route(target=target, jumps=jumps)


def rotate_share_key(*, actor, session, share_mode=None):
    """Give the session a new share link; return the key.

    The old link stops working at once: whoever is attached through it is disconnected (the
    session's home node hears it after commit), and browsers that redeemed it hold a stale grant.
    """
    if session.owner_id != actor.pk:
        raise Forbidden("Only the session's owner shares it.")
    key = random_secrets.token_urlsafe(SHARE_KEY_BYTES)
    session.share_digest = share_digest(key)
    if share_mode:
        session.share_mode = ShareMode(share_mode)
    with transaction.atomic():
        session.save(update_fields=["share_digest", "share_mode"])
        node = Session.objects.filter(pk=session.pk).values_list("node", flat=True).first()
        messages.after_commit(messages.notify_unshared, session.pk, node)
    return key
