"""The permission catalog and the built-in roles: the one place role and permission names live.

Every check in the product (DRF permission classes, the console, Django admin, the SSH bastion)
asks ``accounts.permissions.can()`` for a permission from ``Perm``. The built-in roles form the
ladder ``viewer < operator < poweruser < admin`` of session-broker.txt: each grants everything
the one below it does. Custom roles are named sets of these permissions stored in the database.
"""

from django.db import models


class Perm(models.TextChoices):
    # connection-manager.txt
    CONNECTIONS_CREATE = "connections.create", "Create connections"
    CONNECTIONS_EDIT_OWN = "connections.edit_own", "Edit own connections"
    CONNECTIONS_EDIT_ANY = "connections.edit_any", "Edit any connection"
    CONNECTIONS_DELETE_OWN = "connections.delete_own", "Delete own connections"
    CONNECTIONS_DELETE_ANY = "connections.delete_any", "Delete any connection"
    CONNECTIONS_SHARE = "connections.share", "Share own connections"
    CONNECTIONS_IMPORT_EXPORT = "connections.import_export", "Import and export connections"
    CONNECTIONS_REVEAL = "connections.reveal_credentials", "Read stored credentials"
    # session-broker.txt: sessions, recordings, address book
    SESSIONS_CREATE = "sessions.create", "Open ad-hoc sessions"
    SESSIONS_CONNECT = "sessions.connect", "Open sessions on provided connections"
    SESSIONS_VIEW = "sessions.view", "List sessions"
    SESSIONS_TERMINATE_OWN = "sessions.terminate_own", "End own sessions"
    SESSIONS_TERMINATE_ANY = "sessions.terminate_any", "End any session"
    SESSIONS_WATCH_ANY = "sessions.watch_any", "Watch any live session"
    RECORDINGS_VIEW = "recordings.view", "View recordings"
    RECORDINGS_DELETE = "recordings.delete", "Delete recordings"
    ADDRESSBOOK_VIEW = "addressbook.view", "Browse the address book"
    ADDRESSBOOK_MANAGE = "addressbook.manage", "Manage address-book folders and entries"
    # session-broker.txt: tokens, users, roles, audit
    TOKENS_VIEW_OWN = "tokens.view_own", "List own personal tokens"
    TOKENS_MANAGE_OWN = "tokens.manage_own", "Create and revoke own personal tokens"
    TOKENS_MANAGE_ANY = "tokens.manage_any", "Manage every user's tokens and API keys"
    USERS_MANAGE = "users.manage", "Manage users and roles"
    GROUP_MAPPINGS_MANAGE = "group_mappings.manage", "Manage group-to-role mappings"
    AUDIT_VIEW = "audit.view", "Read the audit log"
    # ssh-server-admin.txt
    SSHSERVER_MANAGE = "sshserver.manage", "Control the SSH bastion"
    # Django admin at /admin/
    ADMIN_SITE = "admin.site", "Use the admin site"


VIEWER = "viewer"
OPERATOR = "operator"
POWERUSER = "poweruser"
ADMIN = "admin"

_VIEWER = {Perm.ADDRESSBOOK_VIEW}
_OPERATOR = _VIEWER | {
    Perm.SESSIONS_CONNECT,
    Perm.SESSIONS_VIEW,
    Perm.SESSIONS_TERMINATE_OWN,
    Perm.RECORDINGS_VIEW,
    Perm.TOKENS_VIEW_OWN,
}
_POWERUSER = _OPERATOR | {
    Perm.SESSIONS_CREATE,
    Perm.TOKENS_MANAGE_OWN,
    Perm.CONNECTIONS_CREATE,
    Perm.CONNECTIONS_EDIT_OWN,
    Perm.CONNECTIONS_DELETE_OWN,
    Perm.CONNECTIONS_SHARE,
    Perm.CONNECTIONS_IMPORT_EXPORT,
}
_ADMIN = set(Perm)

# The ladder, lowest first, and what each built-in role grants.
BUILTIN_ROLES = {
    VIEWER: frozenset(_VIEWER),
    OPERATOR: frozenset(_OPERATOR),
    POWERUSER: frozenset(_POWERUSER),
    ADMIN: frozenset(_ADMIN),
}
BUILTIN_ROLE_NAMES = tuple(BUILTIN_ROLES)
BUILTIN_ROLE_DESCRIPTIONS = {
    VIEWER: "Browses what is shared with them; opens nothing.",
    OPERATOR: "Opens sessions on connections provided to them.",
    POWERUSER: "Also opens ad-hoc sessions and keeps connections of their own.",
    ADMIN: "Everything, including users, roles, audit and the SSH bastion.",
}
DEFAULT_ROLE = VIEWER


def builtin_permissions(role_name):
    """Return the permissions of a built-in role, or None for a custom role."""
    return BUILTIN_ROLES.get(role_name)
