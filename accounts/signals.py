"""Write sign-in, sign-in failure and sign-out to the audit log (Django's auth signals)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import Signal, receiver

from accounts.authentication import client_ip
from accounts.choices import AuditAction
from accounts.services.audit import record_event

# Sent after a user's access was cut (disabled, or forced out of every browser), with ``user``,
# ``actor`` and ``ip``: whatever the user still holds open (live sessions) ends too.
access_revoked = Signal()


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
    # Django masks the password in `credentials`; only the attempted username is kept.
    record_event(
        action=AuditAction.USER_LOGIN_FAILED,
        object_type="user",
        object_name=str(credentials.get("username", "")),
        ip=_ip(request),
    )
