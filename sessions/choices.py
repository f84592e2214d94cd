from django.db import models


class SessionType(models.TextChoices):
    SSH = "ssh", "SSH"
    TELNET = "telnet", "Telnet"
    RDP = "rdp", "RDP"
    VNC = "vnc", "VNC"
    WEB = "web", "Web"



class AuthMethod(models.TextChoices):
    """How PAM signed in to the target (audited-connections `authentication_method`)."""

    PASSWORD = "password", "Password"
    PUBLIC_KEY = "public_key", "Stored private key"
    EPHEMERAL_KEY = "ephemeral_key", "Ephemeral keypair"
    NONE = "none", "No credentials"


class Status(models.TextChoices):
    PENDING = "pending", "Waiting for the terminal"
    CONNECTING = "connecting", "Connecting"
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"
    TERMINATED = "terminated", "Terminated"
    FAILED = "failed", "Failed"
    LOST = "lost", "Lost with its node"


LIVE_STATUSES = (Status.PENDING, Status.CONNECTING, Status.ACTIVE)
FINISHED_STATUSES = (Status.ENDED, Status.TERMINATED, Status.FAILED, Status.LOST)


class ShareMode(models.TextChoices):
    READ_ONLY = "read-only", "Watch only"
    READ_WRITE = "read-write", "Watch and type"


class Access(models.TextChoices):
    """How a websocket takes part in a session."""

    OWNER = "owner", "Owner"
    VIEWER = "viewer", "Viewer (share link)"
    COLLABORATOR = "collaborator", "Collaborator (read-write share link)"
    SUPERVISOR = "supervisor", "Supervisor (admin watching)"


class TransferDirection(models.TextChoices):
    UPLOAD = "upload", "To the target"
    DOWNLOAD = "download", "From the target"


class TransferStatus(models.TextChoices):
    OK = "ok", "Complete"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
