"""The audit log: one row per security-relevant event."""

from accounts.models import AuditEvent


def record_event(*, action, user=None, email="", object_type="", object_name="", ip=None, details=""):
    """Write one audit event; ``email`` defaults to the user's, kept even if the user goes."""
    return AuditEvent.objects.create(
        action=action,
        user=user,
        user_email=email or (user.email if user else ""),
        object_type=object_type,
        object_name=object_name[:200],
        ip_addr=ip,
        details=details,
    )
