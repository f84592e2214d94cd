import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.permissions import can
from accounts.roles import Perm
from connections.models import Connection
from pam.fields import EncryptedTextField
from sessions.choices import (
    FINISHED_STATUSES,
    AuthMethod,
    LIVE_STATUSES,
    SessionType,
    ShareMode,
    Status,
    TransferDirection,
    TransferStatus,
)


class SessionQuerySet(models.QuerySet):
    def live(self):
        return self.filter(status__in=LIVE_STATUSES)

    def visible_to(self, user):
        """Sessions ``user`` may list: their own; every session for those who may watch any."""
        if can(user, Perm.SESSIONS_WATCH_ANY) or can(user, Perm.SESSIONS_TERMINATE_ANY):
            return self.all()
        return self.filter(owner=user)

    def attachable_by(self, user, link_digest=""):
        """Sessions ``user`` may attach a terminal to: their own while they could still open them,
        the one whose current share link they present (by its digest), and every session for
        whoever watches any. How they take part is sessions.policy.access_for's answer."""
        if user is None or not user.is_authenticated:
            return self.none()
        if can(user, Perm.SESSIONS_WATCH_ANY):
            return self.all()
        allowed = Q(pk__in=[])
        if can(user, Perm.SESSIONS_CREATE):
            allowed |= Q(owner=user, connection__isnull=True)
        if can(user, Perm.SESSIONS_CONNECT):
            allowed |= Q(owner=user, connection__in=Connection.objects.usable_by(user))
        if link_digest:
            allowed |= Q(share_digest=link_digest)
        return self.filter(allowed)


class Session(models.Model):
    """One session to a target, from creation to its end: the live state and its audit trail.

    Credentials of an ad-hoc or prompted session (and an ephemeral keypair's private key) are
    kept encrypted in ``secrets`` only until the target is reached, then wiped. A saved
    connection's credentials are read from the connection when connecting, never copied.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sessions")
    connection = models.ForeignKey(
        "connections.Connection", null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    session_type = models.CharField(max_length=10, choices=SessionType.choices)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    username = models.CharField(max_length=255, blank=True)
    # What the target was reached through: "user@host:port" per hop, for the trail.
    jump_chain = models.JSONField(default=list, blank=True)
    secrets = EncryptedTextField(help_text="Encrypted JSON: credentials used once to connect.")
    auth_method = models.CharField(max_length=15, choices=AuthMethod.choices, default=AuthMethod.PASSWORD)
    public_key = models.TextField(blank=True, help_text="Public half of an ephemeral keypair.")
    banner = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_message = models.CharField(max_length=500, blank=True)
    share_digest = models.CharField(max_length=64, blank=True, editable=False)
    share_mode = models.CharField(max_length=10, choices=ShareMode.choices, default=ShareMode.READ_ONLY)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    dpi = models.PositiveIntegerField(null=True, blank=True)
    enable_drive = models.BooleanField(default=False)
    disable_copy = models.BooleanField(default=False)
    disable_paste = models.BooleanField(default=False)
    recording_enabled = models.BooleanField(default=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    node = models.CharField(max_length=100, blank=True, help_text="The node holding the target connection.")
    bytes_in = models.BigIntegerField(default=0, help_text="Client to target.")
    bytes_out = models.BigIntegerField(default=0, help_text="Target to client.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    last_activity = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["node", "status"])]

    def __str__(self):
        return f"{self.session_type} {self.username}@{self.host}:{self.port} ({self.status})"

    def __repr__(self):
        return f"<Session {self.pk} {self.status}>"

    @property
    def is_live(self):
        return self.status in LIVE_STATUSES

    @property
    def is_finished(self):
        return self.status in FINISHED_STATUSES

    @property
    def target(self):
        return f"{self.username}@{self.host}:{self.port}" if self.username else f"{self.host}:{self.port}"


class Viewer(models.Model):
    """A websocket attached to a session right now (who is watching, from which node)."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="viewers")
    channel_name = models.CharField(max_length=200, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    access = models.CharField(max_length=15)
    node = models.CharField(max_length=100)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    credential = models.CharField(
        max_length=40, blank=True, db_index=True,
        help_text="The API key or personal token it attached with ('api_key:<id>', 'user_token:<id>'); empty for a browser.",
    )
    joined_at = models.DateTimeField(default=timezone.now)
    revoked = models.CharField(
        max_length=200, blank=True,
        help_text="Why its access was withdrawn: its node closes it (at once, or at its next sweep).",
    )

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(access__in=["owner", "viewer", "collaborator", "supervisor"]), name="viewer_access_known"
            )
        ]

    def __str__(self):
        return f"{self.user} {self.access} on {self.session_id}"


class SessionChannel(models.Model):
    """One stream a session carried (a shell, a telnet link, an SFTP subsystem): its trail."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="trail_channels")
    kind = models.CharField(max_length=20, help_text="shell, telnet, sftp, …")
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    bytes_in = models.BigIntegerField(default=0, help_text="Client to target.")
    bytes_out = models.BigIntegerField(default=0, help_text="Target to client.")

    class Meta:
        ordering = ["opened_at", "pk"]

    def __str__(self):
        return f"{self.kind} of {self.session_id}"


class TransferredFile(models.Model):
    """A file moved through a session's channel: what, which way, how much, and its digest.

    ``stored`` names where a copy of the content is kept for the trail, empty when none is.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.ForeignKey(SessionChannel, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    path = models.TextField()
    direction = models.CharField(max_length=10, choices=TransferDirection.choices)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=TransferStatus.choices, default=TransferStatus.OK)
    stored = models.CharField(max_length=255, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at"]

    def __str__(self):
        return f"{self.direction} {self.path}"
