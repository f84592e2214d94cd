"""The route to a saved connection, with its stored credentials: the one place they are read to
connect (server side only; connection-manager's GET /connections/:id/session reveals them to
people, connections.services.connections.reveal_credentials).

Tunnels follow ``route_for_connection`` as it is. A session on a connection
(sessions.services.sessions.route_for) takes the same jump hosts, and the stored credentials
only when it signs in as the stored account without credentials of its own.
"""

from connections.choices import KEY_PROTOCOLS
from targets.routes import DEFAULT_SSH_PORT, Hop, Route


def stored_credentials(connection):
    """A saved connection's own decrypted credentials for its target, as ``Hop`` fields.

    Raises ``UnreadableSecret`` (a 409) when one does not open for this connection.
    """
    credentials = {"password": connection.password}
    if connection.protocol in KEY_PROTOCOLS:
        credentials["private_key"] = connection.private_key
    return credentials


def jump_hops(connection):
    """A saved connection's jump hosts with their decrypted credentials, in order."""
    return tuple(
        Hop(
            host=h.host, port=h.port or DEFAULT_SSH_PORT, username=h.username, password=h.password,
            private_key=h.private_key,
        )
        for h in connection.jump_hops.all()
    )


def route_for_connection(connection):
    """The connection's endpoint, signed in to as its stored account, through its jump hosts."""
    host, port = connection.endpoint()
    target = Hop(host=host, port=port, username=connection.username, **stored_credentials(connection))
    return Route(target=target, jumps=jump_hops(connection))
