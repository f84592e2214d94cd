"""API keys and personal user tokens: issue, revoke, and check a presented token.

Plaintext exists only in the value returned at creation; the database keeps a SHA-256 digest
(the secrets are 256-bit random, so a fast hash is enough and a slow one would only cost time
on every request). Every creation, revocation and refused use is written to the audit log
(refusals repeated from one client summarised, and throttled per client: accounts.throttling).
"""

import hashlib
import hmac
import ipaddress
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.choices import AuditAction
from accounts.models import ApiKey, UserToken, api_key_name_validator
from accounts.permissions import ensure_grantable
from accounts.services.audit import record_event, record_repeated_event
from accounts.throttling import FailedTokenThrottle
from pam.exceptions import Conflict, InvalidInput

SECRET_BYTES = 32
TOKEN_NAME_MAX = 100


class TokenRefused(Exception):
    """A presented token is not accepted; the message is safe to show the caller."""


class TokenThrottled(TokenRefused):
    """Too many refused tokens came from the caller's address; ``wait`` is seconds to wait."""

    def __init__(self, wait):
        super().__init__("Too many refused tokens from this address.")
        self.wait = wait


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def token_expiry(expires_at):
    """Return the expiry a token gets: the one asked for, or else the longest allowed.

    Every token and API key expires within TOKEN_MAX_LIFETIME_DAYS, so a leaked one cannot be
    used forever; an expiry in the past or beyond that limit is refused.
    """
    now = timezone.now()
    latest = now + timedelta(days=settings.TOKEN_MAX_LIFETIME_DAYS)
    if expires_at is None:
        return latest
    if expires_at <= now:
        raise InvalidInput("expires_at must be in the future.", field="expires_at")
    if expires_at > latest:
        raise InvalidInput(
            f"expires_at may be at most {settings.TOKEN_MAX_LIFETIME_DAYS} days ahead "
            f"(until {latest:%Y-%m-%d %H:%M} UTC).",
            field="expires_at",
        )
    return expires_at


def parse_allowed_ips(values):
    """Validate an allow-list of addresses or CIDR networks; return them normalised."""
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(str(value).strip(), strict=False)))
        except ValueError:
            raise InvalidInput(f"{value!r} is not an IP address or network.", field="allowed_ips") from None
    return networks


def ip_allowed(ip, allowed):
    if not allowed:
        return True
    if not ip:
        return False
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(network) for network in allowed)


def issue_api_key(*, name, user, actor=None, expires_at=None, allowed_ips=(), ip=None):
    """Create an API key acting as ``user``; return ``(key, "name:secret")``.

    The key acts with all of ``user``'s permissions, so ``actor`` must hold them all.
    """
    try:
        api_key_name_validator(name)
    except Exception as exc:  # django ValidationError: one message, phrased for the caller
        raise InvalidInput(exc.messages[0], field="name") from None
    if not user.is_active:
        raise InvalidInput("The user is disabled.", field="user")
    ensure_grantable(actor, user.role.permission_set)
    expires_at = token_expiry(expires_at)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    try:
        with transaction.atomic():
            key = ApiKey.objects.create(
                name=name,
                user=user,
                digest=digest(secret),
                expires_at=expires_at,
                allowed_ips=parse_allowed_ips(allowed_ips),
                created_by=actor,
            )
            record_event(
                action=AuditAction.API_KEY_CREATED,
                user=user,
                object_type="api_key",
                object_name=name,
                ip=ip,
                details=_by(actor, user, "created"),
            )
    except IntegrityError:
        raise Conflict(f"An API key named {name!r} already exists.", field="name") from None
    return key, f"{name}:{secret}"


def update_api_key(*, api_key, actor, expires_at=None, allowed_ips=(), ip=None):
    """Change an API key's expiry and address allow-list; extending a key is granting it anew."""
    ensure_grantable(actor, api_key.user.role.permission_set)
    api_key.expires_at = token_expiry(expires_at)
    api_key.allowed_ips = parse_allowed_ips(allowed_ips)
    with transaction.atomic():
        api_key.save(update_fields=["expires_at", "allowed_ips"])
        _restricted_after_commit(api_key)
        record_event(
            action=AuditAction.API_KEY_CHANGED,
            user=api_key.user,
            object_type="api_key",
            object_name=api_key.name,
            ip=ip,
            details=f"{_by(actor, api_key.user, 'changed')}; expires {api_key.expires_at:%Y-%m-%d %H:%M}, "
            f"addresses: {', '.join(api_key.allowed_ips) or 'any'}",
        )
    return api_key


def revoke_api_key(*, api_key, actor=None, ip=None):
    """Revoke an API key at once; revoking twice is harmless."""
    _revoke(api_key, AuditAction.API_KEY_REVOKED, "api_key", actor, ip)


def issue_user_token(*, user, name, actor, max_role=None, expires_at=None, ip=None):
    """Create a personal token for ``user``; return ``(token, plaintext)``.

    session-broker: names are 1-100 characters and unique per user; ``max_role`` may not
    exceed the user's current role. The token acts with the user's permissions (capped by
    ``max_role``), so ``actor`` must hold them all.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > TOKEN_NAME_MAX:
        raise InvalidInput(f"name must be 1-{TOKEN_NAME_MAX} characters.", field="name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInput("name may not contain control characters.", field="name")
    if not user.is_active:
        raise InvalidInput("The user is disabled.", field="email")
    if max_role is not None and not max_role.permission_set <= user.role.permission_set:
        raise InvalidInput(
            f"max_role {max_role.name!r} exceeds the user's role {user.role_id!r}.", field="max_role"
        )
    granted = user.role.permission_set
    ensure_grantable(actor, granted & max_role.permission_set if max_role is not None else granted)
    expires_at = token_expiry(expires_at)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    plaintext = UserToken.PREFIX + secret
    try:
        with transaction.atomic():
            token = UserToken.objects.create(
                user=user,
                name=name,
                digest=digest(plaintext),
                hint=plaintext[: len(UserToken.PREFIX) + 6],
                max_role=max_role,
                expires_at=expires_at,
                created_by=actor,
            )
            record_event(
                action=AuditAction.TOKEN_CREATED,
                user=user,
                object_type="user_token",
                object_name=name,
                ip=ip,
                details=_by(actor, user, "created"),
            )
    except IntegrityError:
        raise Conflict(f"A token named {name!r} already exists for this user.", field="name") from None
    return token, plaintext


def revoke_user_token(*, token, actor, ip=None):
    """Revoke a personal token at once; revoking twice is harmless."""
    _revoke(token, AuditAction.TOKEN_REVOKED, "user_token", actor, ip)


def _restricted_after_commit(credential):
    """Tell, once committed, that what ``credential`` allows was cut: terminals it opened close."""
    from accounts.signals import credential_restricted  # it imports the authentication, which imports us

    label = credential_label(credential)
    transaction.on_commit(lambda: credential_restricted.send(sender=type(credential), credential=label))


def _revoke(credential, action, object_type, actor, ip):
    with transaction.atomic():
        revoked = type(credential).objects.filter(pk=credential.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            record_event(
                action=action,
                user=credential.user,
                object_type=object_type,
                object_name=credential.name,
                ip=ip,
                details=_by(actor, credential.user, "revoked"),
            )
            _restricted_after_commit(credential)


def credential_label(credential):
    """How an API key or personal token is named where it is remembered (``api_key:<id>``)."""
    return f"{'user_token' if isinstance(credential, UserToken) else 'api_key'}:{credential.pk}"


def _by(actor, owner, verb):
    if actor is None:
        return f"{verb} from the command line"
    if actor.pk == owner.pk:
        return f"{verb} by the owner"
    return f"{verb} by {actor.email}"


def authenticate_token(raw, *, ip=None):
    """Return the ApiKey or UserToken that ``raw`` proves, with its user loaded.

    Raises TokenRefused (after auditing the attempt) for anything else, and TokenThrottled,
    without looking at the token, while ``ip`` is over TOKEN_FAILURE_RATE refusals. Repeated
    refusals are summarised in the audit log (one row per client and token per window).
    """
    throttle = FailedTokenThrottle(ip)
    if not throttle.allow_request():
        record_repeated_event(
            action=AuditAction.TOKEN_THROTTLED,
            object_type="client",
            ip=ip,
            details=f"tokens refused unchecked: over {settings.TOKEN_FAILURE_RATE} refused from this address",
        )
        raise TokenThrottled(throttle.wait())
    if raw.startswith(UserToken.PREFIX):
        credential = (
            UserToken.objects.select_related("user__role", "max_role").filter(digest=digest(raw)).first()
        )
        action, kind = AuditAction.TOKEN_USE_FAILED, "user_token"
        name, owner = (credential.name, credential.user) if credential else ("", None)
    else:
        name, sep, secret = raw.partition(":")
        named = ApiKey.objects.select_related("user__role").filter(name=name).first() if sep else None
        # Only a stored key's name is logged: what else came before a colon may be a secret itself.
        name, owner = (named.name, named.user) if named else ("", None)
        credential = named if named and hmac.compare_digest(named.digest, digest(secret)) else None
        action, kind = AuditAction.API_KEY_USE_FAILED, "api_key"

    reason = _refusal(credential, ip)
    if reason:
        throttle.failed()
        record_repeated_event(
            action=action,
            user=owner,
            object_type=kind,
            object_name=name[:100],
            ip=ip,
            details=reason,
        )
        raise TokenRefused(reason if credential else "Invalid token.")
    _touch(credential)
    return credential


def _refusal(credential, ip):
    if credential is None:
        return "unknown token or wrong secret"
    if credential.revoked_at is not None:
        return "The token has been revoked."
    # A row without an expiry (written before lifetimes existed) lives the longest allowed.
    lifetime = timedelta(days=settings.TOKEN_MAX_LIFETIME_DAYS)
    if (credential.expires_at or credential.created_at + lifetime) <= timezone.now():
        return "The token has expired."
    if not credential.user.is_active:
        return "The user is disabled."
    if isinstance(credential, ApiKey) and not ip_allowed(ip, credential.allowed_ips):
        return "The API key is not allowed from this address."
    return ""


def _touch(credential):
    """Record the last use, writing at most once per TOKEN_LAST_USED_RESOLUTION per token."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.TOKEN_LAST_USED_RESOLUTION)
    type(credential).objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=credential.pk
    ).update(last_used_at=now)
    credential.last_used_at = now
