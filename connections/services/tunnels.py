"""Connection tunnels: check their ports, start and stop them, restart those whose worker was lost.

The tunnels themselves run in a Celery worker (connections.tunnels explains why and how); these
services only change rows and queue the tasks that wake the worker.

Who may do what (connection-manager says nothing about running tunnels; this is PAM's rule,
connections.policy):
- see a connection's tunnels: whoever may read the connection;
- start them: holders of sessions.connect who may use the connection (theirs, shared with them,
  or in an address-book folder they see), because a tunnel signs in with the stored
  credentials just as a session does;
- stop them: the same users, and holders of sessions.terminate_any.

When a port is *taken*: when another connection's tunnel holds it (starting, up, down or
stopping; the database answers for every node, and a partial unique constraint settles races),
or when anything already listens on it. The latter is checked here by binding the port, which
says something only when this web node is the worker's machine (the embedded default); on
other machines the worker's own bind decides, and the tunnel fails with that reason. Two
connections may list the same port; only one of them may run it at a time.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from connections import policy
from connections.choices import ACTIVE_TUNNEL_STATES, RUNNING_TUNNEL_STATES, Protocol, TunnelState
from connections.models import Connection, Tunnel
from nodes.models import Node
from nodes.services import reap_dead_nodes
from pam.exceptions import Conflict, Forbidden, InvalidInput, ServiceError
from targets.addresses import check_literal

PENDING_GRACE = 10  # seconds a start may wait for its task before the reaper sends it again


def port_range():
    return settings.TUNNEL_PORT_MIN, settings.TUNNEL_PORT_MAX


def check_tunnel_specs(tunnels):
    """Refuse local ports outside the configured range or listed twice, and denied remote hosts."""
    low, high = port_range()
    seen = set()
    for index, tunnel in enumerate(tunnels):
        port = tunnel["local_port"]
        if not low <= port <= high:
            raise InvalidInput(
                f"Local ports of tunnels must be between {low} and {high}; {port} is not.",
                field=f"tunnels[{index}].local_port",
            )
        if port in seen:
            raise InvalidInput(f"Local port {port} is listed twice.", field=f"tunnels[{index}].local_port")
        seen.add(port)
        try:
            check_literal(tunnel["remote_host"], tunnel["remote_port"])
        except ServiceError as exc:
            raise InvalidInput(exc.message, field=f"tunnels[{index}].remote_host") from None


def _check_port_free(connection, port, index):
    field = f"tunnels[{index}].local_port"
    held = Tunnel.objects.filter(local_port=port, state__in=ACTIVE_TUNNEL_STATES).exclude(connection=connection)
    if held.exists():
        raise InvalidInput(f"Port {port} is already taken by another connection's tunnel.", field=field)
    from connections.forwarding import bind_listener, port_in_use_message

    try:
        bind_listener(port).close()
    except OSError:
        raise InvalidInput(port_in_use_message(port), field=field) from None


def _send(task_name, connection_id):
    """Queue a tunnel task once the transaction commits, on the tunnel queue."""
    from connections import tasks

    task = getattr(tasks, task_name)
    queue = settings.TUNNEL_QUEUE or None
    transaction.on_commit(lambda: task.apply_async((connection_id,), queue=queue))


def _audit(actor, connection, ip, details):
    record_event(
        action=AuditAction.TUNNEL_CHANGED,
        user=actor,
        object_type="connection",
        object_name=f"{connection.pk} {connection.name}",
        ip=ip,
        details=details,
    )


def start_tunnels(*, actor, connection, ip=None):
    """Ask a worker to open every configured tunnel of the connection not running yet.

    Tunnels already starting, up or down are left as they are (starting twice is harmless);
    returns the local ports asked for.
    """
    if not policy.can_start_tunnels(actor, connection):
        raise Forbidden("Starting tunnels needs sessions.connect and the use of this connection.")
    if connection.protocol != Protocol.SSH:
        raise InvalidInput("Tunnels need an SSH connection.", field="tunnels")
    if not connection.tunnels:
        raise InvalidInput("This connection has no tunnels.", field="tunnels")
    if connection.prompt_credentials or not (connection.password or connection.private_key):
        raise InvalidInput(
            "Tunnels sign in with the stored credentials; this connection asks for them at connect time.",
            field="password",
        )
    check_tunnel_specs(connection.tunnels)  # the range may have changed since they were saved
    host, port = connection.endpoint()
    check_literal(host, port)
    now = timezone.now()
    started = []
    with transaction.atomic():
        # One start of a connection at a time (a no-op lock on SQLite, whose writers queue anyway).
        Connection.objects.select_for_update().filter(pk=connection.pk).first()
        rows = {row.local_port: row for row in Tunnel.objects.filter(connection=connection)}
        configured = [tunnel["local_port"] for tunnel in connection.tunnels]
        Tunnel.objects.filter(connection=connection).exclude(local_port__in=configured).exclude(
            state__in=ACTIVE_TUNNEL_STATES
        ).delete()
        for index, spec in enumerate(connection.tunnels):
            local_port = spec["local_port"]
            row = rows.get(local_port)
            if row is not None and row.state == TunnelState.STOPPING:
                raise Conflict(f"The tunnel on port {local_port} is still stopping; start it again in a moment.")
            if row is not None and row.state in RUNNING_TUNNEL_STATES:
                continue
            _check_port_free(connection, local_port, index)
            values = {
                "remote_host": spec["remote_host"],
                "remote_port": spec["remote_port"],
                "state": TunnelState.STARTING,
                "message": "",
                "node": "",
                "bytes_in": 0,
                "bytes_out": 0,
                "connections_total": 0,
                "connections_open": 0,
                "started_by": actor,
                "started_at": now,
                "stopped_at": None,
                "updated_at": now,
            }
            try:
                with transaction.atomic():
                    if row is None:
                        Tunnel.objects.create(connection=connection, local_port=local_port, **values)
                    else:
                        Tunnel.objects.filter(pk=row.pk).update(**values)
            except IntegrityError:  # another connection took the port a moment ago
                raise InvalidInput(
                    f"Port {local_port} is already taken by another connection's tunnel.",
                    field=f"tunnels[{index}].local_port",
                ) from None
            started.append(local_port)
        if started:
            _audit(actor, connection, ip, "started " + ", ".join(map(str, started)))
            _send("start_tunnels", connection.pk)
    return started


def _stop(tunnels, now):
    """Stop ``tunnels`` (a queryset): unclaimed ones at once, held ones by their worker."""
    stopped = tunnels.filter(state__in=RUNNING_TUNNEL_STATES, node="").update(
        state=TunnelState.STOPPED, stopped_at=now, updated_at=now, message=""
    )
    stopping = tunnels.filter(state__in=RUNNING_TUNNEL_STATES).exclude(node="").update(
        state=TunnelState.STOPPING, updated_at=now, message=""
    )
    return stopped + stopping


def stop_tunnels(*, actor, connection, ip=None):
    """Close every running tunnel of the connection (its worker does it within a second)."""
    if not policy.can_stop_tunnels(actor, connection):
        raise Forbidden("Only users who may start these tunnels, or end any session, may stop them.")
    with transaction.atomic():
        changed = _stop(Tunnel.objects.filter(connection=connection), timezone.now())
        if changed:
            _audit(actor, connection, ip, f"stopped {changed} tunnel(s)")
            _send("stop_tunnels", connection.pk)
    return changed


def stop_tunnels_of(user, *, actor, ip=None):
    """Stop the tunnels ``user`` started: their access was revoked (accounts.signals)."""
    with transaction.atomic():
        tunnels = Tunnel.objects.filter(started_by=user)
        connection_ids = set(tunnels.filter(state__in=RUNNING_TUNNEL_STATES).values_list("connection_id", flat=True))
        for connection in Connection.objects.filter(pk__in=connection_ids):
            changed = _stop(tunnels.filter(connection=connection), timezone.now())
            if changed:
                _audit(actor, connection, ip, f"stopped {changed} tunnel(s): the starter's access was revoked")
                _send("stop_tunnels", connection.pk)


def _unheld(stale_after=None):
    """A filter: the tunnels no living node holds (none claimed them, or their node is dead or
    was reaped already)."""
    return Q(node="") | ~Q(node__in=Node.objects.alive(stale_after).values("pk"))


def finish_lost_stops(connection_id=None, stale_after=None):
    """Mark stopped the tunnels asked to stop whose worker is gone (nobody else will)."""
    now = timezone.now()
    lost = Tunnel.objects.filter(_unheld(stale_after), state=TunnelState.STOPPING)
    if connection_id is not None:
        lost = lost.filter(connection_id=connection_id)
    return lost.update(state=TunnelState.STOPPED, stopped_at=now, updated_at=now, connections_open=0)


def _hand_back(tunnels):
    """Let go of ``tunnels`` (a queryset) whose worker is gone: their stops are finished, the
    others wait for another worker, whose start is queued; return how many rows changed."""
    now = timezone.now()
    changed = tunnels.filter(state=TunnelState.STOPPING).update(
        state=TunnelState.STOPPED, stopped_at=now, updated_at=now, connections_open=0
    )
    running = tunnels.filter(state__in=RUNNING_TUNNEL_STATES).exclude(node="")
    reopen = set(running.values_list("connection_id", flat=True))
    changed += running.update(
        state=TunnelState.STARTING,
        node="",
        message="Its worker stopped answering; the tunnel reopens on another worker.",
        connections_open=0,
        updated_at=now,
    )
    for connection_id in sorted(reopen):
        _send("start_tunnels", connection_id)
    return changed


def hand_back_tunnels_of(*, node_ids):
    """Finish the stops and reopen elsewhere the tunnels the dead nodes ``node_ids`` held;
    return how many rows changed."""
    return _hand_back(Tunnel.objects.filter(node__in=node_ids))


def on_nodes_lost(sender, node_ids, **kwargs):
    """Receive nodes.signals.nodes_lost: hand the tunnels of the dead nodes to another worker."""
    return hand_back_tunnels_of(node_ids=node_ids)


def reap_lost_tunnels(stale_after=None):
    """Reopen on another worker the tunnels whose worker is dead (or unknown to the node
    registry), finish stops nobody will finish, and queue again starts whose task was lost;
    return how many rows changed.

    Safe on any node, any number of times: every change is a conditional UPDATE, and a start
    task sent twice claims each tunnel once.
    """
    changed = reap_dead_nodes(stale_after=stale_after).get(on_nodes_lost, 0)
    # Those of nodes reaped already (by the sessions' reaper) or never registered, and stops
    # nobody claimed.
    changed += _hand_back(Tunnel.objects.filter(_unheld(stale_after)))
    now = timezone.now()
    waiting = Tunnel.objects.filter(
        state=TunnelState.STARTING, node="", updated_at__lt=now - timedelta(seconds=PENDING_GRACE)
    )
    for connection_id in sorted(set(waiting.values_list("connection_id", flat=True))):
        _send("start_tunnels", connection_id)
    return changed
