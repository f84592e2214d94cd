"""Export and import of a user's connection tree (connection-manager /export and /import).

An export holds the caller's personal folders and connections, never a credential. An import
is bounded (``IMPORT_MAX_CONNECTIONS``) and all or nothing: the whole file is checked first
(group graph, every connection, name clashes), and only then written in one transaction, with
new ids for every group.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.permissions import can
from accounts.roles import Perm
from accounts.services.audit import record_event
from connections.models import Connection, ConnectionGroup, ConnectionTag, JumpHop, new_group_id
from connections.services.connections import PLAIN_FIELDS, SECRETS, normalize_spec, validate_spec
from pam.exceptions import Forbidden, InvalidInput, ServiceError


def export_connections(*, actor, ip=None):
    """Return ``(folders, connections)`` of the actor's personal tree, auditing the export."""
    if not can(actor, Perm.CONNECTIONS_IMPORT_EXPORT):
        raise Forbidden("Export needs the connections.import_export permission.")
    folders = list(ConnectionGroup.objects.filter(owner=actor, scope="").order_by("sort_order", "name"))
    connections = list(
        Connection.objects.filter(owner=actor).prefetch_related("tag_set", "jump_hops").order_by("sort_order", "name")
    )
    record_event(
        action=AuditAction.CONNECTIONS_EXPORTED,
        user=actor,
        object_type="connections",
        ip=ip,
        details=f"{len(folders)} folder(s), {len(connections)} connection(s)",
    )
    return folders, connections


def _group_order(groups):
    """Return the groups parents-first, refusing repeated ids, unknown parents and cycles."""
    by_id = {}
    for index, group in enumerate(groups):
        if group["id"] in by_id:
            raise InvalidInput(f"groups[{index}]: the id {group['id']!r} is used twice.", field="groups")
        by_id[group["id"]] = group
    for group in groups:
        parent = group.get("parent_id")
        if parent is not None and parent not in by_id:
            raise InvalidInput(f"Group {group['id']!r} has an unknown parentId {parent!r}.", field="groups")
    ordered, placed = [], set()
    for group_id in by_id:
        chain, on_chain, current = [], set(), group_id
        while current is not None and current not in placed:
            if current in on_chain:
                raise InvalidInput(f"The groups {' -> '.join(chain[:10])} … form a cycle.", field="groups")
            chain.append(current)
            on_chain.add(current)
            current = by_id[current].get("parent_id")
        for member in reversed(chain):
            ordered.append(by_id[member])
            placed.add(member)
    return ordered


def _check_connections(actor, specs, group_ids):
    seen = set()
    taken = set(Connection.objects.filter(owner=actor, group__isnull=True).values_list("name", flat=True))
    for index, spec in enumerate(specs):
        try:
            ref = spec.get("group_ref")
            if ref is not None and ref not in group_ids:
                raise InvalidInput(f"unknown groupId {ref!r}.", field="group")
            key = (ref, spec["name"])
            if key in seen or (ref is None and spec["name"] in taken):
                raise InvalidInput(f"a connection named {spec['name']!r} already exists in its folder.", field="name")
            seen.add(key)
            if spec.get("shared") and not can(actor, Perm.CONNECTIONS_SHARE):
                raise InvalidInput("shared connections need the connections.share permission.", field="shared")
            spec = normalize_spec(spec)
            validate_spec(spec)
        except ServiceError as exc:
            where = f"connections[{index}]" + (f".{exc.field}" if exc.field else "")
            raise InvalidInput(exc.message, field=where) from None
        specs[index] = spec


def import_connections(*, actor, groups, connections, ip=None):
    """Create the groups and connections of an export file as the actor's own, or nothing."""
    if not (can(actor, Perm.CONNECTIONS_IMPORT_EXPORT) and can(actor, Perm.CONNECTIONS_CREATE)):
        raise Forbidden("Import needs the connections.import_export and connections.create permissions.")
    connections = list(connections)
    if len(connections) > settings.IMPORT_MAX_CONNECTIONS:
        raise InvalidInput(
            f"An import holds at most {settings.IMPORT_MAX_CONNECTIONS} connections (PAM_IMPORT_MAX_CONNECTIONS).",
            field="connections",
        )
    ordered = _group_order(groups)
    _check_connections(actor, connections, {g["id"] for g in groups})
    new_ids = {g["id"]: new_group_id() for g in ordered}
    now = timezone.now()
    with transaction.atomic():
        ConnectionGroup.objects.bulk_create(
            [
                ConnectionGroup(
                    id=new_ids[g["id"]],
                    name=g["name"],
                    parent_id=new_ids.get(g.get("parent_id")),
                    sort_order=g.get("sort_order", 0),
                    owner=actor,
                )
                for g in ordered
            ],
            batch_size=500,
        )
        rows = []
        for spec in connections:
            row = Connection(owner=actor, group_id=new_ids.get(spec.get("group_ref")), created_at=now, updated_at=now)
            for field in (*PLAIN_FIELDS, *SECRETS):
                if field in spec:
                    setattr(row, field, spec[field])
            rows.append(row)
        Connection.objects.bulk_create(rows, batch_size=500)
        ConnectionTag.objects.bulk_create(
            [ConnectionTag(connection=row, name=t) for row, spec in zip(rows, connections) for t in spec.get("tags", [])],
            batch_size=1000,
        )
        JumpHop.objects.bulk_create(
            [
                JumpHop(
                    connection=row,
                    position=position,
                    host=hop["host"],
                    port=hop.get("port") or 22,
                    username=hop["username"],
                    password=hop.get("password") or "",
                    private_key=hop.get("private_key") or "",
                )
                for row, spec in zip(rows, connections)
                for position, hop in enumerate(spec.get("jump_hosts", []))
            ],
            batch_size=500,
        )
        record_event(
            action=AuditAction.CONNECTIONS_IMPORTED,
            user=actor,
            object_type="connections",
            ip=ip,
            details=f"{len(ordered)} folder(s), {len(rows)} connection(s)",
        )
    return {"groupsCreated": len(ordered), "connectionsCreated": len(rows), "newGroupIds": new_ids}
