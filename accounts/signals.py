"""Write sign-in, sign-in failure, lockout and sign-out to the audit log (Django's and axes' signals)."""

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import Signal, receiver

from accounts.authentication import client_ip
from accounts.choices import AuditAction
from accounts.services.audit import record_event, record_repeated_event

# Sent after a user's access was cut (disabled, or forced out of every browser), with ``user``,
# ``actor`` and ``ip``: whatever the user still holds open (live sessions) ends too.
access_revoked = Signal()
# Sent after a user's role changed to one that lacks some of the old one's permissions, with
# ``user``: what was decided under the old role (an attachment to a session) is decided again.
access_narrowed = Signal()
# Sent after an API key or personal token was revoked or restricted (an API key's addresses or
# expiry changed), with ``credential`` (accounts.services.tokens.credential_label): whatever it
# holds open ends, and is decided again if it comes back.
credential_restricted = Signal()


def _ip(request):
    return client_ip(request) if request is not None else None


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    record_event(action=AuditAction.USER_LOGIN, user=user, ip=_ip(request))


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        record_event(action=AuditAction.USER_LOGOUT, user=user, ip=_ip(request))


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs):
    # Django masks the password in `credentials`; only the attempted username is kept. A guessing
    # run is one row per account and address per window, counting the attempts.
    record_repeated_event(
        action=AuditAction.USER_LOGIN_FAILED,
        object_type="user",
        object_name=str(credentials.get("username") or ""),
        ip=_ip(request),
    )


@receiver(user_locked_out)
def audit_locked_out(sender, request, username=None, ip_address=None, **kwargs):
    record_repeated_event(
        action=AuditAction.USER_LOCKED_OUT,
        object_type="user",
        object_name=str(username or ""),
        ip=ip_address,
        details=f"{settings.LOGIN_FAILURE_LIMIT} or more failed sign-ins: refused until the lockout ends",
    )
