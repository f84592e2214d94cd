from django.db import models
from django.utils import timezone


class Recording(models.Model):
    """A session's recording: an asciicast v2 file under PAM_DATA_DIR/recordings.

    ``name`` is the file's path below the recordings directory; it carries no secret, like
    everything in this row (the title is the target, never a credential).
    """

    name = models.CharField(max_length=255, unique=True)
    session = models.OneToOneField(
        "pam_sessions.Session", null=True, blank=True, on_delete=models.SET_NULL, related_name="recording"
    )
    format = models.CharField(max_length=20, default="asciicast-v2")
    size = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return self.name
