from django.db import models


class AuthSource(models.TextChoices):
    LOCAL = "local", "Local account"
    OIDC = "oidc", "Single sign-on"


class AuthType(models.TextChoices):
    """How the current request was authenticated (reported by GET /api/me)."""

    LOCAL = "local", "Local login"
    OIDC = "oidc", "Single sign-on"
    API_KEY = "api_key", "API key"
    USER_TOKEN = "user_token", "Personal token"


class AuditAction(models.TextChoices):
    TOKEN_CREATED = "token.created", "Personal token created"
    TOKEN_REVOKED = "token.revoked", "Personal token revoked"
    TOKEN_USE_FAILED = "token.use_failed", "Personal token refused"
    TOKEN_THROTTLED = "token.throttled", "Token use throttled after repeated refusals"
    API_KEY_CREATED = "api_key.created", "API key created"
    API_KEY_CHANGED = "api_key.changed", "API key expiry or addresses changed"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    API_KEY_USE_FAILED = "api_key.use_failed", "API key refused"
    USER_LOGIN = "user.login", "Signed in"
    USER_LOGIN_FAILED = "user.login_failed", "Sign-in refused"
    USER_LOCKED_OUT = "user.locked_out", "Sign-in locked after repeated failures"
    USER_LOGOUT = "user.logout", "Signed out"
    USER_CREATED = "user.created", "User created"
    USER_ROLE_CHANGED = "user.role_changed", "Role changed"
    USER_DISABLED = "user.disabled", "User disabled"
    USER_ENABLED = "user.enabled", "User enabled"
    USER_DELETED = "user.deleted", "User deleted"
    USER_FORCE_LOGOUT = "user.force_logout", "Sessions ended by an admin"
    GROUP_MAPPING_CHANGED = "group_mapping.changed", "Group-to-role mapping changed"
    ROLE_SAVED = "role.saved", "Role saved"
    ROLE_DELETED = "role.deleted", "Role deleted"
    ADMIN_CREATED = "admin.created", "Created in the admin site"
    ADMIN_CHANGED = "admin.changed", "Changed in the admin site"
    ADMIN_DELETED = "admin.deleted", "Deleted in the admin site"
    MASTER_KEY_ROTATED = "master_key.rotated", "Master key rotated"
    CONNECTION_CREATED = "connection.created", "Connection created"
    CONNECTION_UPDATED = "connection.updated", "Connection changed"
    CONNECTION_DELETED = "connection.deleted", "Connection deleted"
    CONNECTION_CREDENTIALS_READ = "connection.credentials_read", "Stored credentials read"
    CONNECTION_SHARES_CHANGED = "connection.shares_changed", "Connection sharing changed"
    CONNECTIONS_IMPORTED = "connections.imported", "Connections imported"
    CONNECTIONS_EXPORTED = "connections.exported", "Connections exported"
    SESSION_CREATED = "session.created", "Session opened"
    SESSION_STARTED = "session.started", "Session connected to its target"
    SESSION_ENDED = "session.ended", "Session ended"
    SESSION_TERMINATED = "session.terminated", "Session terminated"
    SESSION_JOINED = "session.joined", "Session watched or joined"
    SESSION_FILE_DOWNLOAD = "session.file_download", "File downloaded from a session's target"
    SESSION_FILE_UPLOAD = "session.file_upload", "File uploaded to a session's target"
    RECORDING_VIEWED = "recording.viewed", "Recording played or downloaded"
    RECORDING_VERIFIED = "recording.verified", "Recording checked against its chain"
    RECORDING_DELETED = "recording.deleted", "Recording deleted"
    RECORDINGS_SEARCHED = "recordings.searched", "Recordings searched"
    TRAIL_DOWNLOADED = "trail.downloaded", "Trail log or transferred file downloaded"
    TRAIL_ACCESS_CHANGED = "trail.access_changed", "Access to a trail granted or revoked"
    TRAIL_TAGS_CHANGED = "trail.tags_changed", "Trail tags changed"
    TRAIL_DELETED = "trail.deleted", "Trail deleted"
    HOST_KEY_ACCEPTED = "host_key.accepted", "Changed host key accepted"
    TUNNEL_CHANGED = "tunnel.changed", "Tunnel started or stopped"
    FOLDER_CREATED = "folder.created", "Folder created"
    FOLDER_UPDATED = "folder.updated", "Folder changed"
    FOLDER_DELETED = "folder.deleted", "Folder deleted"


# The actions GET /api/admin/token-audit reports.
TOKEN_AUDIT_ACTIONS = (
    AuditAction.TOKEN_CREATED,
    AuditAction.TOKEN_REVOKED,
    AuditAction.TOKEN_USE_FAILED,
    AuditAction.TOKEN_THROTTLED,
    AuditAction.API_KEY_CREATED,
    AuditAction.API_KEY_CHANGED,
    AuditAction.API_KEY_REVOKED,
    AuditAction.API_KEY_USE_FAILED,
)
