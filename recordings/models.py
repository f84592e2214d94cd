import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.permissions import can
from accounts.roles import Perm
from recordings.choices import DownloadKind, IndexStatus
from recordings.search import SearchableText


def visible_trails(user):
    """The sessions whose trail and recording ``user`` may read: every one with
    ``recordings.view_any``; otherwise their own, and those shared with their role
    (``TrailAccessRole``) unless their token is capped at another role, with ``recordings.view``."""
    from sessions.models import Session

    if user is None or not user.is_authenticated or not can(user, Perm.RECORDINGS_VIEW):
        return Session.objects.none()
    if can(user, Perm.RECORDINGS_VIEW_ANY):
        return Session.objects.all()
    readable = models.Q(owner=user)
    # A share is to the members of a role: a token capped at another role acts as that role.
    cap = getattr(user, "token_cap", None)
    if cap is None or cap.pk == user.role_id:
        readable |= models.Q(pk__in=TrailAccessRole.objects.filter(role_id=user.role_id).values("session_id"))
    return Session.objects.filter(readable)


class RecordingQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(session__in=visible_trails(user).values("pk"))


class Recording(models.Model):
    """A session's recording: an asciicast v2 file under PAM_DATA_DIR/recordings.

    ``name`` is the file's path below the recordings directory; it carries no secret, like
    everything in this row (the title is the target, never a credential). ``digest`` is the last
    link of the file's SHA-256 chain (recordings.chain), kept here once the file is closed so
    that a file and its chain rewritten together are still found out.
    """

    name = models.CharField(max_length=255, unique=True)
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session = models.OneToOneField(
        "pam_sessions.Session", null=True, blank=True, on_delete=models.SET_NULL, related_name="recording"
    )
    format = models.CharField(max_length=20, default="asciicast-v2")
    size = models.BigIntegerField(default=0)
    digest = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    index_status = models.CharField(
        max_length=12, choices=IndexStatus.choices, default=IndexStatus.NOT_INDEXED, db_index=True
    )
    index_error = models.CharField(max_length=500, blank=True)
    index_started_at = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    objects = RecordingQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return self.name

    @property
    def path(self):
        return settings.RECORDINGS_DIR / self.name

    @property
    def duration(self):
        """Seconds recorded (so far, while it is open)."""
        end = self.ended_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())


class RecordingChunk(models.Model):
    """A stretch of a recording's text as the user saw it (recordings.text), for substring search.

    ``text`` is its lines joined by newlines; ``times`` the second (from the recording's start)
    each line was last drawn, so a match is placed on its line's moment; ``terms`` its distinct
    words, which the trigram index covers (recordings.search).
    """

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    start = models.FloatField()
    text = SearchableText()
    terms = models.TextField()
    times = models.JSONField(default=list)

    class Meta:
        ordering = ["recording", "seq"]
        constraints = [models.UniqueConstraint(fields=["recording", "seq"], name="recording_chunk_seq")]


class RecordingCommand(models.Model):
    """A command typed in a recording: the line shown when Enter was pressed, and when."""

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="commands")
    at = models.FloatField(help_text="Seconds from the recording's start.")
    text = models.CharField(max_length=1000)

    class Meta:
        ordering = ["recording", "at", "pk"]


class TrailTag(models.Model):
    """A tag an auditor put on a session's trail (audited-connections `tags`)."""

    session = models.ForeignKey("pam_sessions.Session", on_delete=models.CASCADE, related_name="trail_tags")
    name = models.CharField(max_length=64, db_index=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["session", "name"], name="trail_tag_unique")]


class TrailAccessRole(models.Model):
    """A role whose members may read this session's trail and recording (audited-connections
    `access_roles`), beside its owner and those who may read every trail."""

    session = models.ForeignKey("pam_sessions.Session", on_delete=models.CASCADE, related_name="trail_access")
    role = models.ForeignKey("accounts.Role", on_delete=models.CASCADE, related_name="trail_access")
    added = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["added", "pk"]
        constraints = [models.UniqueConstraint(fields=["session", "role"], name="trail_access_unique")]


class DownloadTicket(models.Model):
    """A short-lived, single-use right of one user to download one trail log or file.

    audited-connections' two-step downloads: a POST makes one, a GET by the same user spends it.
    Only the SHA-256 of the id handed out is kept, like every other token.
    """

    digest = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=4, choices=DownloadKind.choices)
    session = models.ForeignKey("pam_sessions.Session", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey("pam_sessions.SessionChannel", on_delete=models.CASCADE, related_name="+")
    file = models.ForeignKey(
        "pam_sessions.TransferredFile", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
