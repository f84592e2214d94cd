"""Target host keys: trusted on first use, pinned, and a changed key refused until an admin
accepts it. Called from the connecting thread (plain synchronous ORM)."""

import base64
import hashlib

from django.db import IntegrityError, transaction

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from sessions.models import KnownHost


class HostKeyChanged(Exception):
    """The target offered a key other than the pinned one."""


def fingerprint(key_bytes):
    digest = hashlib.sha256(key_bytes).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def verify_host_key(host, port, key_type, key_bytes):
    """Pin the key on first use; refuse (and remember as pending) a key that differs."""
    encoded = base64.b64encode(key_bytes).decode()
    print_ = fingerprint(key_bytes)
    known = KnownHost.objects.filter(host=host, port=port).first()
    if known is None:
        try:
            with transaction.atomic():
                KnownHost.objects.create(
                    host=host, port=port, key_type=key_type, public_key=encoded, fingerprint=print_
                )
            return
        except IntegrityError:  # another session pinned it a moment ago
            known = KnownHost.objects.get(host=host, port=port)
    if known.key_type == key_type and known.public_key == encoded:
        return
    if known.pending_key != encoded:
        KnownHost.objects.filter(pk=known.pk).update(
            pending_key_type=key_type, pending_key=encoded, pending_fingerprint=print_
        )
    raise HostKeyChanged(
        f"The host key of {host}:{port} has changed (now {print_}, pinned {known.fingerprint}). "
        "The session was refused; an admin must accept the new key before anyone connects."
    )


def accept_pending_key(*, actor, known_host, ip=None):
    """Make a host's pending key the pinned one (an admin's decision, audited)."""
    with transaction.atomic():
        known = KnownHost.objects.select_for_update().get(pk=known_host.pk)
        if not known.pending_key:
            return known
        previous = known.fingerprint
        known.key_type, known.public_key, known.fingerprint = (
            known.pending_key_type,
            known.pending_key,
            known.pending_fingerprint,
        )
        known.pending_key_type = known.pending_key = known.pending_fingerprint = ""
        known.accepted_by = actor
        known.save()
        record_event(
            action=AuditAction.HOST_KEY_ACCEPTED,
            user=actor,
            object_type="host_key",
            object_name=f"{known.host}:{known.port}",
            ip=ip,
            details=f"{previous} -> {known.fingerprint}",
        )
    return known
