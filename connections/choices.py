from django.db import models


class Protocol(models.TextChoices):
    SSH = "ssh", "SSH"
    SFTP = "sftp", "SFTP"
    TELNET = "telnet", "Telnet"
    RDP = "rdp", "RDP"
    VNC = "vnc", "VNC"
    SMB = "smb", "SMB"
    FTP = "ftp", "FTP"
    WEB = "web", "Web"


DEFAULT_PORTS = {
    Protocol.SSH: 22,
    Protocol.SFTP: 22,
    Protocol.TELNET: 23,
    Protocol.RDP: 3389,
    Protocol.VNC: 5900,
    Protocol.SMB: 445,
    Protocol.FTP: 21,
    Protocol.WEB: 443,
}

# Protocols whose target may be reached over SSH with a private key.
KEY_PROTOCOLS = (Protocol.SSH, Protocol.SFTP)


class Scope(models.TextChoices):
    """Address-book scopes (session-broker). One installation shares one database, so both
    scopes are visible on every node; they are two namespaces an admin may use to separate
    team folders (`shared`) from folders of this installation's own infrastructure (`instance`)."""

    SHARED = "shared", "Shared"
    INSTANCE = "instance", "Instance"


class ShareType(models.TextChoices):
    USER = "user", "User"
    ROLE = "role", "Role"


class HealthStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not checked"
    REACHABLE = "reachable", "Reachable"
    UNREACHABLE = "unreachable", "Unreachable"

# Address-book entry fields (session-broker) that live in Connection.extra_config; ``autofill``
# holds credentials, so it has an encrypted field of its own (Connection.autofill).
ENTRY_EXTRA_KEYS = (
    "domain",
    "security",
    "auth_pkg",
    "kdc_url",
    "color_depth",
    "enable_drive",
    "disable_copy",
    "disable_paste",
    "allowed_domains",
    "login_script",
)

RDP_SECURITY = ("", "any", "tls", "nla", "rdp")
RDP_AUTH_PACKAGES = ("", "kerberos", "ntlm")
COLOR_DEPTHS = (8, 16, 24, 32)


class TunnelState(models.TextChoices):
    """Where a tunnel is in its life (connections.tunnels keeps the row current)."""

    STARTING = "starting", "Starting"  # asked for; a worker is opening it
    UP = "up", "Up"  # listening, and the SSH link is up
    DOWN = "down", "Down, retrying"  # listening, the SSH link is lost; reconnecting with backoff
    STOPPING = "stopping", "Stopping"  # asked to stop; its worker is closing it
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"  # gave up: the port is taken, or the target refused us for good


# A tunnel in these states holds (or is about to hold) its local port.
ACTIVE_TUNNEL_STATES = (TunnelState.STARTING, TunnelState.UP, TunnelState.DOWN, TunnelState.STOPPING)
# States its worker may still change on its own (a stop request must never be overwritten).
RUNNING_TUNNEL_STATES = (TunnelState.STARTING, TunnelState.UP, TunnelState.DOWN)
