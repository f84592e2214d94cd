"""Who may do what to a connection or folder, composed from accounts.permissions.can().

Personal connections have an owner; address-book entries (connections in address-book folders)
belong to the installation (no owner) and are managed by holders of ``addressbook.manage``.
Sharing grants use, never edit rights.
"""

from accounts.permissions import can
from accounts.roles import Perm


def can_edit(user, connection):
    if connection.owner_id is None:
        return can(user, Perm.ADDRESSBOOK_MANAGE) or can(user, Perm.CONNECTIONS_EDIT_ANY)
    return can(user, Perm.CONNECTIONS_EDIT_OWN, connection)


def can_delete(user, connection):
    if connection.owner_id is None:
        return can(user, Perm.ADDRESSBOOK_MANAGE) or can(user, Perm.CONNECTIONS_DELETE_ANY)
    return can(user, Perm.CONNECTIONS_DELETE_OWN, connection)


def can_reveal(user, connection):
    """connection-manager: decrypted credentials go to the owner and to holders of the reveal
    permission only; users a connection is shared with never read them."""
    return can(user, Perm.CONNECTIONS_REVEAL) or (
        connection.owner_id is not None and connection.owner_id == user.pk
    )


def can_view_shares(user, connection):
    return connection.owner_id == user.pk or can(user, Perm.CONNECTIONS_EDIT_ANY)


def can_change_shares(user, connection):
    return can(user, Perm.CONNECTIONS_SHARE) and (
        connection.owner_id == user.pk or can(user, Perm.CONNECTIONS_EDIT_ANY)
    )


def can_edit_folder(user, folder):
    if folder.is_address_book:
        return can(user, Perm.ADDRESSBOOK_MANAGE)
    return folder.owner_id == user.pk and can(user, Perm.CONNECTIONS_CREATE)


def can_start_tunnels(user, connection):
    """A tunnel uses the stored credentials as a session does: whoever may open a session on the
    connection (sessions.connect, and the connection is theirs, shared with them or in an
    address-book folder they see) may start its tunnels."""
    from connections.models import Connection

    return can(user, Perm.SESSIONS_CONNECT) and Connection.objects.usable_by(user).filter(pk=connection.pk).exists()


def can_stop_tunnels(user, connection):
    """Whoever may start them, and holders of sessions.terminate_any (who may end anyone's access)."""
    return can(user, Perm.SESSIONS_TERMINATE_ANY) or can_start_tunnels(user, connection)
