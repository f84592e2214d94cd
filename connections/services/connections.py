"""Connections: create, change, delete, read credentials, share, reorder.

Both APIs (connection-manager connections and session-broker address-book entries) hand these
services a *spec*: a dict of model field names (``host``, ``private_key``, ``group``, ``tags``,
``jump_hosts`` …) already type-checked by their serializers. The rules that do not depend on
the API's spelling live here: protocol-specific fields, key validity, the target deny list,
where a connection may live, and what the actor may grant.
"""

import json
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.models import Role, User
from accounts.permissions import can
from accounts.roles import Perm
from accounts.services.audit import record_event
from connections import policy
from connections.choices import (
    COLOR_DEPTHS,
    DEFAULT_PORTS,
    KEY_PROTOCOLS,
    RDP_AUTH_PACKAGES,
    RDP_SECURITY,
    Protocol,
    ShareType,
)
from connections.models import Connection, ConnectionTag, JumpHop, Share
from connections.services.tunnels import check_tunnel_specs
from pam.exceptions import Conflict, Forbidden, InvalidInput, ServiceError
from pam.fields import EncryptedTextField, is_set
from pam.sshkeys import InvalidKey, load_private_key
from targets.addresses import check_literal, check_url

MAX_TAGS = 32
MAX_HOPS = 8
MAX_TUNNELS = 32
MAX_EXTRA_CONFIG_BYTES = 8192
SECRETS = ("password", "private_key", "autofill")
# Where, as whom and how stored secrets are sent: an edit may not change any of it without the
# secrets being entered again (see moved_secrets). The jump chain before a target is part of it.
ROUTE_FIELDS = ("protocol", "host", "port", "url", "username", "skip_cert_validation")
ROUTE_OPTIONS = {
    Protocol.RDP: ("domain", "security", "auth_pkg", "kdc_url"),
    Protocol.WEB: ("allowed_domains", "login_script"),
}
MAX_AUTOFILL = 8192
PLAIN_FIELDS = (
    "name",
    "display_name",
    "protocol",
    "host",
    "port",
    "url",
    "username",
    "shared",
    "skip_cert_validation",
    "recording_enabled",
    "prompt_credentials",
    "tunnels",
    "extra_config",
    "sort_order",
)


def _check_key(value, field):
    if value:
        try:
            load_private_key(value)
        except InvalidKey as exc:
            raise InvalidInput(str(exc), field=field) from None


def _clean_tags(tags):
    cleaned = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    if len(cleaned) > MAX_TAGS:
        raise InvalidInput(f"At most {MAX_TAGS} tags.", field="tags")
    return cleaned


def _is_text(limit):
    return lambda value: isinstance(value, str) and len(value) <= limit


def _is_bool(value):
    return isinstance(value, bool)


# Options both APIs know by name (address-book entry fields, connection-manager extraConfig).
KNOWN_OPTIONS = {
    "domain": (_is_text(255), "a string of at most 255 characters"),
    "security": (lambda v: v in RDP_SECURITY, f"one of {', '.join(map(repr, RDP_SECURITY))}"),
    "auth_pkg": (lambda v: v in RDP_AUTH_PACKAGES, f"one of {', '.join(map(repr, RDP_AUTH_PACKAGES))}"),
    "kdc_url": (_is_text(2048), "a URL"),
    "color_depth": (lambda v: not isinstance(v, bool) and v in COLOR_DEPTHS, "8, 16, 24 or 32"),
    "enable_drive": (_is_bool, "true or false"),
    "disable_copy": (_is_bool, "true or false"),
    "disable_paste": (_is_bool, "true or false"),
    "allowed_domains": (lambda v: isinstance(v, list) and all(_is_text(255)(d) for d in v), "a list of domains"),
    "login_script": (lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9._-]*", v), "a file name"),
    "resolution": (lambda v: isinstance(v, str) and re.fullmatch(r"\d{3,5}x\d{3,5}", v), "like 1920x1080"),
}


def _clean_extra_config(config):
    if len(json.dumps(config)) > MAX_EXTRA_CONFIG_BYTES:
        raise InvalidInput(f"extra configuration is limited to {MAX_EXTRA_CONFIG_BYTES} bytes.", field="extra_config")
    for key, value in config.items():
        if key in KNOWN_OPTIONS:
            valid, expected = KNOWN_OPTIONS[key]
            if not valid(value):
                raise InvalidInput(f"{key} must be {expected}.", field="extra_config")
        elif isinstance(value, (dict, list)) and any(isinstance(v, (dict, list)) for v in _values(value)):
            raise InvalidInput(f"extra configuration value {key!r} is nested too deeply.", field="extra_config")
    return config


def _values(value):
    return value.values() if isinstance(value, dict) else value


def _check_autofill(value):
    """session-broker-v2: a JSON array of objects (url, username, password) as a string."""
    if value in (None, ""):
        return
    try:
        items = json.loads(value) if isinstance(value, str) and len(value) <= MAX_AUTOFILL else None
    except ValueError:
        items = None
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and all(isinstance(v, str) for v in item.values()) for item in items
    ):
        raise InvalidInput(
            f"autofill must be a JSON array of objects with url, username and password strings "
            f"(at most {MAX_AUTOFILL} characters).",
            field="autofill",
        )


def validate_spec(spec, *, check_tunnels=True):
    """Check the cross-field rules of a complete spec (after merging with stored values).

    ``check_tunnels=False`` skips the tunnels' port range, for an edit that leaves them as
    they are: a range narrowed later must not block renaming a connection.
    """
    protocol = spec["protocol"]
    if protocol == Protocol.WEB:
        if not spec.get("url"):
            raise InvalidInput("A web connection needs a url.", field="url")
        check_url(spec["url"])
    elif not spec.get("host"):
        raise InvalidInput("A host is required.", field="host")
    if spec.get("host"):
        check_literal(spec["host"], spec.get("port") or 0)
    if spec.get("private_key") and protocol not in KEY_PROTOCOLS:
        raise InvalidInput(f"A private key is only used by {', '.join(KEY_PROTOCOLS)}.", field="private_key")
    if spec.get("tunnels") and protocol != Protocol.SSH:
        raise InvalidInput("Tunnels need an SSH connection.", field="tunnels")
    if len(spec.get("tunnels") or []) > MAX_TUNNELS:
        raise InvalidInput(f"At most {MAX_TUNNELS} tunnels.", field="tunnels")
    if check_tunnels:
        check_tunnel_specs(spec.get("tunnels") or [])
    hops = spec.get("jump_hosts") or []
    if len(hops) > MAX_HOPS:
        raise InvalidInput(f"At most {MAX_HOPS} jump hosts.", field="jump_hosts")
    for index, hop in enumerate(hops):
        try:
            check_literal(hop["host"], hop.get("port") or 22)
        except ServiceError as exc:
            raise InvalidInput(exc.message, field=f"jump_hosts[{index}].host") from None
    _clean_extra_config(spec.get("extra_config") or {})


def _check_placement(actor, spec, connection=None):
    """Decide the owner from the folder: personal folders keep the owner's connections,
    address-book folders hold the installation's entries; neither kind moves into the other."""
    group = spec.get("group")
    address_book = bool(group and group.is_address_book)
    if address_book and not can(actor, Perm.ADDRESSBOOK_MANAGE):
        raise Forbidden("Only address-book managers may put connections in address-book folders.", field="group")
    if connection is None:
        owner = None if address_book else actor
    else:
        owner = connection.owner
        if address_book != (connection.owner_id is None):
            raise InvalidInput("Connections cannot move between the address book and personal folders.", field="group")
    if group and not address_book and group.owner_id != getattr(owner, "pk", None):
        raise InvalidInput("The folder belongs to someone else.", field="group")
    if spec.get("shared") and not (connection and connection.shared) and not can(actor, Perm.CONNECTIONS_SHARE):
        raise Forbidden("Sharing with everyone needs the connections.share permission.", field="shared")
    return owner


def _save_related(connection, spec, previous_hops=None):
    if "tags" in spec:
        connection.tag_set.all().delete()
        ConnectionTag.objects.bulk_create(ConnectionTag(connection=connection, name=t) for t in spec["tags"])
    if "jump_hosts" in spec:
        connection.jump_hops.all().delete()
        hops = []
        for position, hop in enumerate(spec["jump_hosts"]):
            stored = _same_hop(previous_hops, position, hop, spec["jump_hosts"])
            hops.append(
                JumpHop(
                    connection=connection,
                    position=position,
                    host=hop["host"],
                    port=hop.get("port") or 22,
                    username=hop["username"],
                    # session-broker: omitted hop credentials are kept from the hop at that index.
                    password=hop["password"] if "password" in hop else getattr(stored, "password", ""),
                    private_key=hop["private_key"] if "private_key" in hop else getattr(stored, "private_key", ""),
                )
            )
        JumpHop.objects.bulk_create(hops)


def _same_hop(previous_hops, position, hop, hops):
    """The stored hop whose credentials an edited hop may keep.

    session-broker merges hop credentials by index; PAM keeps them only while this hop and every
    hop before it still name the same user on the same host and port, so an edit can never send
    a stored secret to a different machine or account, nor through a machine of its own choosing.
    """
    if not previous_hops or position >= len(previous_hops):
        return None
    before = [_hop_route(h.host, h.port, h.username) for h in previous_hops[: position + 1]]
    after = [_hop_route(h["host"], h.get("port"), h["username"]) for h in hops[: position + 1]]
    return previous_hops[position] if before == after else None


def _hop_route(host, port, username):
    return (host, port or 22, username)


def _route(values):
    """Everything in ``values`` that decides where stored secrets go (None: not known here)."""
    protocol = values.get("protocol")
    if protocol == Protocol.WEB:  # a web target is its URL; host and port are not used
        where = (values.get("url") or "",)
    else:
        where = (values.get("host") or "", values.get("port") or (DEFAULT_PORTS[protocol] if protocol else 22))
    options = values.get("extra_config") or {}
    chain = values.get("jump_hosts")
    return (
        protocol,
        where,
        values.get("username") or "",
        bool(values.get("skip_cert_validation")),
        tuple(options.get(key) or "" for key in ROUTE_OPTIONS.get(protocol, ())) if "extra_config" in values else None,
        [_hop_route(h.get("host"), h.get("port"), h.get("username")) for h in chain] if chain is not None else None,
    )


def moved_secrets(*, actor, stored, changes):
    """The stored secrets an edit of ``stored`` (a connection or a jump hop) must drop.

    An edit that points a target somewhere else (protocol, host, port, url, the jump hosts
    before it), at another account (username, domain) or weakens how it is reached (certificate
    checks, RDP security and Kerberos settings, autofill domains) would send the stored secrets
    there: whoever may not read them (connections.reveal_credentials) must enter them again with
    the edit, or they are dropped, as ``_same_hop`` does for jump hosts. The API's updates and
    the admin change form both ask this one function.
    """
    if can(actor, Perm.CONNECTIONS_REVEAL):
        return []
    before = {name: getattr(stored, name) for name in (*ROUTE_FIELDS, "extra_config") if hasattr(stored, name)}
    if "jump_hosts" in changes and hasattr(stored, "jump_hops"):
        before["jump_hosts"] = [
            {"host": h.host, "port": h.port, "username": h.username} for h in stored.jump_hops.all()
        ]
    after = {**before, **{name: value for name, value in changes.items() if name in before}}
    if _route(before) == _route(after):
        return []
    names = [f.name for f in stored._meta.concrete_fields if isinstance(f, EncryptedTextField)]
    return [name for name in names if name not in changes and is_set(stored, name)]


def _unique_name_conflict(spec):
    return Conflict(f"A connection named {spec.get('name')!r} already exists in this folder.", field="name")


def normalize_spec(spec):
    """Clean what can be cleaned without the database: tags, key validity, autofill.

    connection-manager carries autofill inside extraConfig: it is lifted out into the
    encrypted field here, so it is never stored or shown as plain configuration.
    """
    spec = dict(spec)
    config = spec.get("extra_config")
    if isinstance(config, dict) and "autofill" in config:
        spec["extra_config"] = {key: value for key, value in config.items() if key != "autofill"}
        spec.setdefault("autofill", config["autofill"])
    _check_autofill(spec.get("autofill"))
    if "tags" in spec:
        spec["tags"] = _clean_tags(spec["tags"])
    _check_key(spec.get("private_key"), "private_key")
    for index, hop in enumerate(spec.get("jump_hosts") or []):
        _check_key(hop.get("private_key"), f"jump_hosts[{index}].private_key")
    return spec


def create_connection(*, actor, spec, ip=None):
    """Create a connection from a spec; the actor needs connections.create."""
    if not can(actor, Perm.CONNECTIONS_CREATE):
        raise Forbidden("Creating connections needs the connections.create permission.")
    spec = normalize_spec(spec)
    validate_spec(spec)
    owner = _check_placement(actor, spec)
    connection = Connection(owner=owner, group=spec.get("group"))
    for field in (*PLAIN_FIELDS, *SECRETS):
        if field in spec:
            setattr(connection, field, spec[field])
    try:
        with transaction.atomic():
            connection.save(force_insert=True)
            _save_related(connection, spec)
            record_event(
                action=AuditAction.CONNECTION_CREATED,
                user=actor,
                object_type="connection",
                object_name=f"{connection.pk} {connection.name}",
                ip=ip,
            )
    except IntegrityError:
        raise _unique_name_conflict(spec) from None
    return connection


def update_connection(*, actor, connection, changes, ip=None):
    """Merge ``changes`` into a connection (read-modify-write) and save it.

    Fields not in ``changes`` keep their values; secrets given as '' or None are cleared, and
    stored secrets the edit would send to another target or account are dropped unless the
    actor may read them (``moved_secrets``). Jump hosts, when given, replace the chain, keeping
    each hop's stored credentials where the new hop omits them and names the same target.
    """
    if not policy.can_edit(actor, connection):
        raise Forbidden("You may not edit this connection.")
    changes = normalize_spec(changes)
    for secret in SECRETS:
        if secret in changes and changes[secret] is None:
            changes[secret] = ""
    dropped = moved_secrets(actor=actor, stored=connection, changes=changes)
    changes.update(dict.fromkeys(dropped, ""))
    merged = {field: getattr(connection, field) for field in PLAIN_FIELDS}
    # Whether a secret is stored is all the checks need: stored secrets stay sealed.
    merged.update({name: is_set(connection, name) for name in SECRETS})
    merged.update(group=connection.group)
    merged.update(changes)
    previous_hops = list(connection.jump_hops.all())
    if "jump_hosts" not in changes:
        merged["jump_hosts"] = [{"host": h.host, "port": h.port} for h in previous_hops]
    validate_spec(merged, check_tunnels="tunnels" in changes)
    if "group" in changes or "shared" in changes:
        _check_placement(actor, merged, connection)
    for field in (*PLAIN_FIELDS, *SECRETS, "group"):
        if field in changes:
            setattr(connection, field, changes[field])
    connection.updated_at = timezone.now()
    try:
        with transaction.atomic():
            connection.save()
            _save_related(connection, changes, previous_hops)
            record_event(
                action=AuditAction.CONNECTION_UPDATED,
                user=actor,
                object_type="connection",
                object_name=f"{connection.pk} {connection.name}",
                ip=ip,
                details=", ".join(sorted(changes)) + (f"; dropped stored {', '.join(dropped)}" if dropped else ""),
            )
    except IntegrityError:
        raise _unique_name_conflict(merged) from None
    return connection


def delete_connection(*, actor, connection, ip=None):
    if not policy.can_delete(actor, connection):
        raise Forbidden("You may not delete this connection.")
    with transaction.atomic():
        name = f"{connection.pk} {connection.name}"
        connection.delete()
        record_event(action=AuditAction.CONNECTION_DELETED, user=actor, object_type="connection", object_name=name, ip=ip)


def reveal_credentials(*, actor, connection, ip=None):
    """Return the decrypted credentials, auditing every read (connection-manager /session)."""
    if not policy.can_reveal(actor, connection):
        raise Forbidden("Only the owner and holders of connections.reveal_credentials may read credentials.")
    host, port = connection.endpoint()
    record_event(
        action=AuditAction.CONNECTION_CREDENTIALS_READ,
        user=actor,
        object_type="connection",
        object_name=f"{connection.pk} {connection.name}",
        ip=ip,
    )
    return {
        "host": host,
        "port": port,
        "username": connection.username,
        "password": connection.password,
        "privateKey": connection.private_key,
        "jumpHosts": [
            {"host": h.host, "port": h.port, "username": h.username, "password": h.password, "privateKey": h.private_key}
            for h in connection.jump_hops.all()
        ],
    }


def _share_target(item, owner_id):
    kind, target = item["share_type"], item["target_id"]
    if kind == ShareType.USER:
        raw = target.removeprefix("user_")
        user = User.objects.filter(pk=int(raw)).first() if raw.isdigit() else User.objects.filter(email=target.lower()).first()
        if user is None:
            raise InvalidInput(f"No user {target!r}.", field="shares")
        if user.pk == owner_id:
            raise InvalidInput("A connection is not shared with its owner.", field="shares")
        return {"user": user}
    role = Role.objects.filter(pk=target.removeprefix("role_")).first()
    if role is None:
        raise InvalidInput(f"No role {target!r}.", field="shares")
    return {"role": role}


def set_shares(*, actor, connection, shares, ip=None):
    """Replace every share of a connection at once (connection-manager PUT /shares)."""
    if not policy.can_change_shares(actor, connection):
        raise Forbidden("Only the owner, with connections.share, may change who the connection is shared with.")
    targets = [_share_target(item, connection.owner_id) for item in shares]
    keys = [tuple((k, v.pk) for k, v in t.items()) for t in targets]
    if len(set(keys)) != len(keys):
        raise InvalidInput("The same target is listed twice.", field="shares")
    with transaction.atomic():
        connection.shares.all().delete()
        Share.objects.bulk_create(Share(connection=connection, created_by=actor, **t) for t in targets)
        record_event(
            action=AuditAction.CONNECTION_SHARES_CHANGED,
            user=actor,
            object_type="connection",
            object_name=f"{connection.pk} {connection.name}",
            ip=ip,
            details=", ".join(f"{item['share_type']}:{item['target_id']}" for item in shares) or "no shares",
        )


def reorder(*, actor, model, items, allowed):
    """Set ``sort_order`` of several rows at once, or of none if any id is not ``allowed``."""
    ids = [item["id"] for item in items]
    if len(set(ids)) != len(ids):
        raise InvalidInput("An id is listed twice.", field="items")
    found = model.objects.in_bulk(ids)
    for item in items:
        row = found.get(item["id"])
        if row is None or not allowed(actor, row):
            raise InvalidInput(f"Unknown id {item['id']!r}.", field="items")
        row.sort_order = item["sort_order"]
    with transaction.atomic():
        model.objects.bulk_update(list(found.values()), ["sort_order"], batch_size=500)
