"""The audit log: one row per security-relevant event, or per window for repeated failures."""

import hashlib

from django.conf import settings
from django.core.cache import caches
from django.db.models import F
from django.utils import timezone

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


def record_repeated_event(
    *, action, user=None, email="", object_type="", object_name="", ip=None, details=""
):
    """Write an event an attacker can repeat at will (a wrong password, a bad token) once per
    AUDIT_REPEAT_WINDOW: the same event again within the window adds to that row's ``repeats``.

    The window's row id is kept in the shared "throttle" cache, so every node adds to one row;
    a repeat costs one cache read and one single-row UPDATE, never a new row.
    """
    fields = dict(action=action, user=user, email=email, object_type=object_type, object_name=object_name,
                  ip=ip, details=details)
    identity = "\0".join(str(part) for part in (action, user.pk if user else "", email, object_type,
                                                  object_name[:200], ip or "", details))
    key = "audit-repeat:" + hashlib.sha256(identity.encode()).hexdigest()
    cache = caches["throttle"]
    event_id = cache.get(key)
    if event_id is not None:
        repeat = AuditEvent.objects.filter(pk=event_id)
        if repeat.update(repeats=F("repeats") + 1, last_seen_at=timezone.now()):
            return None
    event = record_event(**fields)
    cache.set(key, event.pk, settings.AUDIT_REPEAT_WINDOW)
    return event
