"""Host keys of SSH targets, pinned per route (targets.services.hostkeys decides).

Both tables were created by sessions (label ``pam_sessions``) and keep their names: the move
here changed Django's state only (sessions 0005, targets 0001), never a row.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class KnownHost(models.Model):
    """A host's SSH key, trusted on first use and pinned for the route it was met on.

    A route is how the host is actually reached: the address connected to, the port, and the
    jump path before it (each hop by the account used on it and its own pinned address), so a
    name reached through someone's own jump host is a pin of its own and never touches the
    direct one. Every other key later offered on the route is kept as a HostKeySighting (who
    met it, when) and refused until an admin accepts one of them.
    """

    route = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of address, port and path.")
    host = models.CharField(max_length=255, help_text="The name typed when the key was first pinned.")
    address = models.CharField(
        max_length=255, help_text="The address connected to, or its spelling sent to the last hop."
    )
    port = models.PositiveIntegerField()
    path = models.TextField(
        blank=True, help_text="The jump hosts before it ('user@address:port', in order); empty when direct."
    )
    key_type = models.CharField(max_length=50)
    public_key = models.TextField(help_text="Base64 of the key, as in known_hosts.")
    fingerprint = models.CharField(max_length=100)
    first_seen = models.DateTimeField(default=timezone.now)
    first_seen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "pam_sessions_knownhost"  # sessions created it; the model moved, its rows stayed
        ordering = ["address", "port", "path"]

    def __str__(self):
        return f"{self.where} {self.key_type} {self.fingerprint}"

    @property
    def where(self):
        """``address:port``, with the jump path before it when there is one."""
        here = f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"
        return f"{self.path} > {here}" if self.path else here


class HostKeySighting(models.Model):
    """A key other than the pinned one, offered on a pinned route: which, to whom, and when."""

    known_host = models.ForeignKey(KnownHost, on_delete=models.CASCADE, related_name="sightings")
    key_type = models.CharField(max_length=50)
    public_key = models.TextField(help_text="Base64 of the key, as in known_hosts.")
    fingerprint = models.CharField(max_length=100)
    seen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    times = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "pam_sessions_hostkeysighting"  # sessions created it; the model moved, its rows stayed
        ordering = ["known_host", "-last_seen"]
        constraints = [
            models.UniqueConstraint(fields=["known_host", "fingerprint", "seen_by"], name="unique_host_key_sighting")
        ]

    def __str__(self):
        return f"{self.fingerprint} on {self.known_host.where}"
