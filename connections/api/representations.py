"""How connections read in each document. Credentials never appear: only whether one is stored.

The tree listing builds plain dicts from ``values_list()`` rows, tags joined in by the database
(a constant number of queries whatever the size of the tree), rather than serializer
instances, which cost too much at ten thousand connections (bench/README.md).
"""

from connections.choices import DEFAULT_PORTS, ENTRY_EXTRA_KEYS
from connections.models import TAG_SEPARATOR, tag_names
from pam.fields import is_set

SUMMARY_FIELDS = (
    "id",
    "name",
    "display_name",
    "protocol",
    "host",
    "port",
    "url",
    "username",
    "group_id",
    "owner_id",
    "shared",
    "sort_order",
    "prompt_credentials",
    "health_status",
    "health_latency_ms",
    "health_checked_at",
    "health_error",
    "tag_names",
)


def _health(status, latency, checked_at, error):
    return {
        "status": status,
        "latencyMs": latency,
        "checkedAt": checked_at.isoformat() if checked_at else None,
        "error": error or None,
    }


def summary_rows(connections):
    """The rows ``connection_summaries`` reads: one query, tags included."""
    return connections.annotate(tag_names=tag_names()).values_list(*SUMMARY_FIELDS)


def connection_summaries(rows, user_id):
    """The tree's connections, from ``summary_rows`` (datetimes are left for orjson to write)."""
    for (pk, name, display_name, protocol, host, port, url, username, group_id, owner_id, shared, sort_order,
         prompt_credentials, health_status, latency, checked_at, health_error, names) in rows:
        yield group_id, owner_id, {
            "id": pk,
            "name": name,
            "displayName": display_name,
            "protocol": protocol,
            "host": host,
            "port": port or DEFAULT_PORTS[protocol],
            "url": url,
            "username": username,
            "groupId": group_id,
            "tags": names.split(TAG_SEPARATOR) if names else [],
            "shared": shared,
            "own": owner_id == user_id,
            "sortOrder": sort_order,
            "promptCredentials": prompt_credentials,
            "health": {"status": health_status, "latencyMs": latency, "checkedAt": checked_at, "error": health_error or None},
        }


FOLDER_FIELDS = ("id", "name", "parent_id", "sort_order", "scope", "description")


def folder_summaries(folders):
    for pk, name, parent_id, sort_order, scope, description in folders.values_list(*FOLDER_FIELDS):
        yield {"id": pk, "name": name, "parentId": parent_id, "sortOrder": sort_order, "scope": scope or None,
               "description": description, "connections": []}


def folder_summary(folder):
    return {
        "id": folder.pk,
        "name": folder.name,
        "parentId": folder.parent_id,
        "sortOrder": folder.sort_order,
        "scope": folder.scope or None,
        "description": folder.description,
    }


def share_item(share):
    return {
        "id": share.pk,
        "shareType": share.share_type,
        "targetId": share.target_id,
        "targetName": str(share.user.email if share.user_id else share.role_id),
        "createdAt": share.created_at.isoformat(),
    }


def connection_detail(connection, *, include_shares):
    """connection-manager GET /connections/:id."""
    return {
        "id": connection.pk,
        "name": connection.name,
        "displayName": connection.display_name,
        "protocol": connection.protocol,
        "host": connection.host,
        "port": connection.effective_port,
        "url": connection.url,
        "username": connection.username,
        "groupId": connection.group_id,
        "ownerId": f"user_{connection.owner_id}" if connection.owner_id else None,
        "recordingEnabled": connection.recording_enabled,
        "hasPassword": is_set(connection, "password"),
        "hasPrivateKey": is_set(connection, "private_key"),
        "hasAutofill": is_set(connection, "autofill"),
        "shared": connection.shared,
        "promptCredentials": connection.prompt_credentials,
        "tunnels": [
            {"localPort": t["local_port"], "remoteHost": t["remote_host"], "remotePort": t["remote_port"]}
            for t in connection.tunnels
        ],
        "extraConfig": connection.extra_config,
        "tags": [t.name for t in connection.tag_set.all()],
        "jumpHosts": [
            {
                "host": hop.host,
                "port": hop.port,
                "username": hop.username,
                "hasPassword": is_set(hop, "password"),
                "hasPrivateKey": is_set(hop, "private_key"),
            }
            for hop in connection.jump_hops.all()
        ],
        "shares": [share_item(s) for s in connection.shares.select_related("user")] if include_shares else [],
        "skipCertValidation": connection.skip_cert_validation,
        "sortOrder": connection.sort_order,
        "health": _health(
            connection.health_status, connection.health_latency_ms, connection.health_checked_at, connection.health_error
        ),
        "createdAt": connection.created_at.isoformat(),
        "updatedAt": connection.updated_at.isoformat(),
    }


def export_document(folders, connections, exported_at):
    """connection-manager GET /connections/export: version 1, without any credential."""
    return {
        "version": 1,
        "exportedAt": exported_at.isoformat(),
        "groups": [
            {"id": f.pk, "name": f.name, "parentId": f.parent_id, "sortOrder": f.sort_order} for f in folders
        ],
        "connections": [
            {
                "name": c.name,
                "displayName": c.display_name,
                "protocol": c.protocol,
                "host": c.host,
                "port": c.port,
                "url": c.url,
                "username": c.username,
                "groupId": c.group_id,
                "tags": [t.name for t in c.tag_set.all()],
                "shared": c.shared,
                "skipCertValidation": c.skip_cert_validation,
                "recordingEnabled": c.recording_enabled,
                "promptCredentials": c.prompt_credentials,
                "tunnels": [
                    {"localPort": t["local_port"], "remoteHost": t["remote_host"], "remotePort": t["remote_port"]}
                    for t in c.tunnels
                ],
                "extraConfig": c.extra_config,
                "jumpHosts": [{"host": h.host, "port": h.port, "username": h.username} for h in c.jump_hops.all()],
                "sortOrder": c.sort_order,
            }
            for c in connections
        ],
    }


def address_book_folder(folder):
    return {
        "scope": folder.scope,
        "name": folder.name,
        "allowed_groups": sorted(g.name for g in folder.allowed_groups.all()),
        "description": folder.description,
    }


def address_book_entry(connection):
    """session-broker: an address-book entry, with credentials reduced to has_* flags."""
    entry = {
        "id": connection.pk,
        "name": connection.name,
        "type": connection.protocol,
        "hostname": connection.host,
        "port": connection.effective_port,
        "username": connection.username,
        "url": connection.url,
        "ignore_cert": connection.skip_cert_validation,
        "display_name": connection.display_name,
        "prompt_credentials": connection.prompt_credentials,
        "has_password": is_set(connection, "password"),
        "has_private_key": is_set(connection, "private_key"),
        "has_autofill": is_set(connection, "autofill"),
        "jump_hosts": [
            {
                "hostname": hop.host,
                "port": hop.port,
                "username": hop.username,
                "has_password": is_set(hop, "password"),
                "has_private_key": is_set(hop, "private_key"),
            }
            for hop in connection.jump_hops.all()
        ],
        "health": _health(
            connection.health_status, connection.health_latency_ms, connection.health_checked_at, connection.health_error
        ),
    }
    entry.update({key: connection.extra_config[key] for key in ENTRY_EXTRA_KEYS if key in connection.extra_config})
    return entry


def _iso(value):
    return value.isoformat() if value else None


def _tunnel_item(spec, row, configured):
    running = row is not None and row.is_active
    source = row if running or spec is None else None
    return {
        "localPort": spec["local_port"] if spec else row.local_port,
        "bindAddress": "127.0.0.1",
        "remoteHost": source.remote_host if source else spec["remote_host"],
        "remotePort": source.remote_port if source else spec["remote_port"],
        "configured": configured,
        "state": row.state if row else "stopped",
        "message": row.message if row else "",
        "bytesIn": row.bytes_in if row else 0,
        "bytesOut": row.bytes_out if row else 0,
        "connections": row.connections_total if row else 0,
        "openConnections": row.connections_open if row else 0,
        "worker": (row.node or None) if row else None,
        "startedBy": row.started_by.email if row and row.started_by else None,
        "startedAt": _iso(row.started_at) if row else None,
        "stoppedAt": _iso(row.stopped_at) if row else None,
        "updatedAt": _iso(row.updated_at) if row else None,
    }


def tunnel_states(connection, port_range):
    """GET /connections/:id/tunnels: each configured tunnel with its state, then any tunnel
    still running after it was removed from the connection."""
    rows = {row.local_port: row for row in connection.tunnel_states.select_related("started_by")}
    items = [_tunnel_item(spec, rows.pop(spec["local_port"], None), True) for spec in connection.tunnels]
    items += [_tunnel_item(None, row, False) for row in rows.values() if row.is_active]
    low, high = port_range
    return {"tunnels": items, "portRange": {"min": low, "max": high}}
