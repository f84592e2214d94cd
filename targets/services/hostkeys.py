"""Target host keys: trusted on first use, pinned per route, and a changed key refused until an
admin accepts it. Called from the connecting thread (plain synchronous ORM).

A pin belongs to the route the host was actually reached by (HostRoute), never to a typed name:
someone reaching "the same host:port" through a jump host of their own lands wherever that hop
sends them, so what they meet there can neither pin nor change the direct route's key. A key
that differs from the pin is kept, with who met it and when, next to every other such key;
none replaces another, and an admin accepts one chosen key.
"""

import base64
import hashlib
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from pam.exceptions import Conflict
from targets.addresses import literal_address
from targets.models import HostKeySighting, KnownHost


class HostKeyChanged(Exception):
    """The target offered a key other than the pinned one."""


def fingerprint(key_bytes):
    digest = hashlib.sha256(key_bytes).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _hostport(address, port):
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class HostRoute:
    """How one host of a chain is reached: what its key is pinned under.

    ``address`` is the address PAM connected to, or, behind a jump host, the target's spelling
    sent to that hop (which resolves it: a name stays a name). ``path`` lists the hops before
    it, each as ``user@address:port`` of its own route, so another jump host, or another
    account on the same one, is another route. ``name`` is what was typed, for people to read.
    """

    address: str
    port: int
    path: str = ""
    name: str = ""

    @classmethod
    def direct(cls, connected_address, port, name):
        return cls(literal_address(connected_address) or connected_address, port, "", name)

    def next_hop(self, username, host, port):
        """The route of ``host:port`` reached through this host, signed in as ``username``."""
        hop = f"{username}@{_hostport(self.address, self.port)}"
        address = literal_address(host) or host.lower().rstrip(".")
        return HostRoute(address, port, f"{self.path} > {hop}" if self.path else hop, host)

    @property
    def digest(self):
        return hashlib.sha256(f"{self.address}\n{self.port}\n{self.path}".encode()).hexdigest()

    def __str__(self):
        here = _hostport(self.address, self.port)
        return f"{self.path} > {here}" if self.path else here


def verify_host_key(route, key_type, key_bytes, user_id=None):
    """Pin the key on first use of ``route``; refuse a key that differs, keeping it as seen by ``user_id``."""
    encoded = base64.b64encode(key_bytes).decode()
    print_ = fingerprint(key_bytes)
    known = KnownHost.objects.filter(route=route.digest).first()
    if known is None:
        try:
            with transaction.atomic():
                KnownHost.objects.create(
                    route=route.digest, host=route.name[:255], address=route.address, port=route.port,
                    path=route.path, key_type=key_type, public_key=encoded, fingerprint=print_, first_seen_by_id=user_id,
                )
            return
        except IntegrityError:  # another session pinned it a moment ago
            known = KnownHost.objects.get(route=route.digest)
    if known.key_type == key_type and known.public_key == encoded:
        return
    _record_sighting(known, key_type, encoded, print_, user_id)
    raise HostKeyChanged(
        f"The host key of {route} has changed (now {print_}, pinned {known.fingerprint}). "
        "The session was refused; an admin must accept the new key before anyone connects."
    )


def _record_sighting(known, key_type, encoded, print_, user_id):
    now = timezone.now()
    sightings = HostKeySighting.objects.filter(known_host=known, fingerprint=print_, seen_by_id=user_id)
    if sightings.update(last_seen=now, times=F("times") + 1):
        return
    try:
        with transaction.atomic():
            HostKeySighting.objects.create(
                known_host=known, key_type=key_type, public_key=encoded, fingerprint=print_,
                seen_by_id=user_id, first_seen=now, last_seen=now,
            )
    except IntegrityError:  # the same user met it twice at once: one row is enough
        sightings.update(last_seen=now, times=F("times") + 1)


def accept_host_key(*, actor, sighting, ip=None):
    """Pin the key of one chosen sighting on its route (an admin's decision, audited).

    The sightings of that key are cleared; other differing keys stay listed until dismissed.
    """
    with transaction.atomic():
        known = KnownHost.objects.select_for_update().get(pk=sighting.known_host_id)
        chosen = known.sightings.filter(pk=sighting.pk).first()
        if chosen is None:
            raise Conflict("This key is no longer waiting to be accepted.")
        previous = known.fingerprint
        known.key_type, known.public_key, known.fingerprint = chosen.key_type, chosen.public_key, chosen.fingerprint
        known.accepted_by = actor
        known.save(update_fields=["key_type", "public_key", "fingerprint", "accepted_by"])
        same_key = known.sightings.filter(fingerprint=chosen.fingerprint)
        witnesses = sorted({s.seen_by.email if s.seen_by else "unknown" for s in same_key.select_related("seen_by")})
        same_key.delete()
        record_event(
            action=AuditAction.HOST_KEY_ACCEPTED,
            user=actor,
            object_type="host_key",
            object_name=known.where,
            ip=ip,
            details=f"{previous} -> {known.fingerprint}, seen by {', '.join(witnesses)}",
        )
    return known
