"""The permission catalog and the built-in roles: the one place role and permission names live.

Every check in the product (DRF permission classes, the console, Django admin, the SSH bastion)
asks ``accounts.permissions.can()`` for a permission from ``Perm``. The built-in roles form the
ladder ``viewer < operator < poweruser < admin`` of session-broker.txt: each grants everything
the one below it does. Beside the ladder, ``auditor`` reads every recording, trail and the audit
log and watches live sessions, but opens nothing. Custom roles are named sets of these
permissions stored in the database.
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
    RECORDINGS_VIEW = "recordings.view", "View the recordings and trails of own sessions"
    RECORDINGS_VIEW_ANY = "recordings.view_any", "View, search, tag and share every recording and trail"
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
    HOSTKEYS_MANAGE = "hostkeys.manage", "Edit and accept pinned target host keys"
    # Django admin at /admin/
    ADMIN_SITE = "admin.site", "Enter the admin site (each page needs its own permission)"


VIEWER = "viewer"
OPERATOR = "operator"
POWERUSER = "poweruser"
ADMIN = "admin"
AUDITOR = "auditor"

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
_AUDITOR = {
    Perm.SESSIONS_VIEW,
    Perm.SESSIONS_WATCH_ANY,
    Perm.RECORDINGS_VIEW,
    Perm.RECORDINGS_VIEW_ANY,
    Perm.AUDIT_VIEW,
}

# The ladder, lowest first, then the auditor beside it, and what each built-in role grants.
BUILTIN_ROLES = {
    VIEWER: frozenset(_VIEWER),
    OPERATOR: frozenset(_OPERATOR),
    POWERUSER: frozenset(_POWERUSER),
    ADMIN: frozenset(_ADMIN),
    AUDITOR: frozenset(_AUDITOR),
}
BUILTIN_ROLE_NAMES = tuple(BUILTIN_ROLES)
LADDER = (VIEWER, OPERATOR, POWERUSER, ADMIN)
BUILTIN_ROLE_DESCRIPTIONS = {
    VIEWER: "Browses what is shared with them; opens nothing.",
    OPERATOR: "Opens sessions on connections provided to them.",
    POWERUSER: "Also opens ad-hoc sessions and keeps connections of their own.",
    ADMIN: "Everything, including users, roles, audit and the SSH bastion.",
    AUDITOR: "Reads every recording, trail and the audit log, and watches live sessions; opens nothing.",
}
DEFAULT_ROLE = VIEWER


def builtin_permissions(role_name):
    """Return the permissions of a built-in role, or None for a custom role."""
    return BUILTIN_ROLES.get(role_name)


# Django admin (/admin/): what each model's pages and actions require, every listed permission at
# once. ``admin.site`` only opens /admin/ itself; an action not listed here is refused to
# everyone, admins included. Keys are "<app_label>.<model_name>"; actions are Django's four
# plus the custom admin actions that declare ``allowed_permissions``.
_CRUD = ("view", "add", "change", "delete")


def _each(actions, *perms):
    return {action: set(perms) for action in actions}


_CONNECTION_PARTS = _each(_CRUD, Perm.CONNECTIONS_EDIT_ANY)
_USERS = _each(_CRUD, Perm.USERS_MANAGE)

ADMIN_PERMS = {
    "accounts.user": _USERS,
    "accounts.role": _USERS,
    # A group's name is what single sign-on matches claims against: renaming one hands its
    # address-book folders to whoever's claims carry the new name.
    "auth.group": {**_USERS, "change": {Perm.USERS_MANAGE, Perm.ADDRESSBOOK_MANAGE}},
    "accounts.loginsession": _each(("view", "delete"), Perm.USERS_MANAGE),
    "accounts.apikey": _each(("view", "add", "change", "revoke"), Perm.TOKENS_MANAGE_ANY),
    "accounts.usertoken": _each(("view", "revoke"), Perm.TOKENS_MANAGE_ANY),
    "accounts.grouprolemapping": _each(_CRUD, Perm.GROUP_MAPPINGS_MANAGE),
    "accounts.auditevent": {"view": {Perm.AUDIT_VIEW}},
    # The connection form edits host and stored credentials directly, without the API's rule that
    # a changed endpoint needs its credentials re-entered: only those who may read them use it.
    "connections.connection": {
        "view": {Perm.CONNECTIONS_EDIT_ANY},
        "add": {Perm.CONNECTIONS_CREATE, Perm.CONNECTIONS_EDIT_ANY, Perm.CONNECTIONS_REVEAL},
        "change": {Perm.CONNECTIONS_EDIT_ANY, Perm.CONNECTIONS_REVEAL},
        "delete": {Perm.CONNECTIONS_DELETE_ANY},
    },
    "connections.jumphop": {
        **_CONNECTION_PARTS,
        "add": {Perm.CONNECTIONS_EDIT_ANY, Perm.CONNECTIONS_REVEAL},
        "change": {Perm.CONNECTIONS_EDIT_ANY, Perm.CONNECTIONS_REVEAL},
    },
    "connections.connectiontag": _CONNECTION_PARTS,
    "connections.share": {
        "view": {Perm.CONNECTIONS_EDIT_ANY},
        "add": {Perm.CONNECTIONS_EDIT_ANY, Perm.CONNECTIONS_SHARE},
        "change": {Perm.CONNECTIONS_EDIT_ANY, Perm.CONNECTIONS_SHARE},
        "delete": {Perm.CONNECTIONS_EDIT_ANY, Perm.CONNECTIONS_SHARE},
    },
    "connections.connectiongroup": {
        "view": {Perm.CONNECTIONS_EDIT_ANY},
        "add": {Perm.CONNECTIONS_EDIT_ANY, Perm.ADDRESSBOOK_MANAGE},
        "change": {Perm.CONNECTIONS_EDIT_ANY, Perm.ADDRESSBOOK_MANAGE},
        "delete": {Perm.CONNECTIONS_EDIT_ANY, Perm.ADDRESSBOOK_MANAGE},
    },
    "connections.tunnel": {"view": {Perm.SESSIONS_WATCH_ANY}, "stop": {Perm.SESSIONS_TERMINATE_ANY}},
    "pam_sessions.session": {"view": {Perm.AUDIT_VIEW}, "terminate": {Perm.SESSIONS_TERMINATE_ANY}},
    "pam_sessions.viewer": {"view": {Perm.SESSIONS_WATCH_ANY}},
    "nodes.node": {"view": {Perm.AUDIT_VIEW}},
    "targets.knownhost": _each(_CRUD, Perm.HOSTKEYS_MANAGE),
    "targets.hostkeysighting": _each(("view", "delete", "accept"), Perm.HOSTKEYS_MANAGE),
    # Read-only: a recording and its trail change only through recordings.services (audited).
    "recordings.recording": {"view": {Perm.RECORDINGS_VIEW_ANY}, "delete": {Perm.RECORDINGS_DELETE}},
    "pam_sessions.sessionchannel": {"view": {Perm.RECORDINGS_VIEW_ANY}},
    "pam_sessions.transferredfile": {"view": {Perm.RECORDINGS_VIEW_ANY}},
}


def admin_permissions(django_perm):
    """Return the catalog permissions a Django admin permission (``"accounts.add_apikey"``)
    requires, or None when no one may have it."""
    app_label, _, codename = django_perm.partition(".")
    action, _, model_name = codename.partition("_")
    required = ADMIN_PERMS.get(f"{app_label}.{model_name}", {}).get(action)
    return frozenset(required) if required else None
