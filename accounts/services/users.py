"""User administration: roles, disabling, deletion and forced logout.

An installation must keep at least one active admin, so no operation here may demote, disable
or delete the last one; and admins may not disable or delete their own account. Nobody gives a
role granting more than they hold, nor changes the account of someone holding more than they do
(accounts.permissions.ensure_grantable, ensure_outranks): only admins make or unmake admins.
"""

from django.db import transaction

from accounts import roles
from accounts.choices import AuditAction
from accounts.models import LoginSession, User
from accounts.permissions import ensure_grantable, ensure_outranks
from accounts.services.audit import record_event
from accounts.signals import access_narrowed, access_revoked
from pam.exceptions import Conflict, InvalidInput


def _ensure_not_last_admin(user):
    if user.role_id != roles.ADMIN or not user.is_active:
        return
    others = User.objects.filter(role_id=roles.ADMIN, is_active=True).exclude(pk=user.pk)
    if not others.exists():
        raise Conflict("This is the last active admin; make another admin first.")


def _revoke_after_commit(user, actor, ip):
    transaction.on_commit(lambda: access_revoked.send(sender=User, user=user, actor=actor, ip=ip))


def _ensure_not_self(user, actor, verb):
    if actor is not None and actor.pk == user.pk:
        raise InvalidInput(f"You cannot {verb} your own account.")


def create_user(*, user, actor, ip=None):
    """Save a new local ``user`` (built by a form, password already set) with its role."""
    ensure_grantable(actor, user.role.permission_set)
    with transaction.atomic():
        user.save()
        record_event(
            action=AuditAction.USER_CREATED,
            user=actor,
            object_type="user",
            object_name=user.email,
            ip=ip,
            details=f"role {user.role_id}",
        )
    return user


def set_user_role(*, user, role, actor, ip=None):
    """Give ``user`` the role ``role`` (a Role); their next request already runs under it."""
    if user.role_id == role.pk:
        return user
    ensure_grantable(actor, role.permission_set)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        ensure_outranks(actor, user)
        if role.pk != roles.ADMIN:
            _ensure_not_last_admin(user)
        previous = user.role
        user.role = role
        user.save(update_fields=["role"])
        if not role.permission_set >= previous.permission_set:
            transaction.on_commit(lambda: access_narrowed.send(sender=User, user=user))
        record_event(
            action=AuditAction.USER_ROLE_CHANGED,
            user=actor,
            object_type="user",
            object_name=user.email,
            ip=ip,
            details=f"{previous.pk} -> {role.pk}",
        )
    return user


def disable_user(*, user, actor, ip=None):
    """Disable ``user``: end their logins now; their keys and tokens stop working at once."""
    _ensure_not_self(user, actor, "disable")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        ensure_outranks(actor, user)
        if not user.is_active:
            return user
        _ensure_not_last_admin(user)
        user.is_active = False
        user.save(update_fields=["is_active"])
        ended = LoginSession.objects.filter(user=user).delete()[0]
        record_event(
            action=AuditAction.USER_DISABLED,
            user=actor,
            object_type="user",
            object_name=user.email,
            ip=ip,
            details=f"{ended} web login(s) ended",
        )
        _revoke_after_commit(user, actor, ip)
    return user


def enable_user(*, user, actor, ip=None):
    """Re-enable a disabled user: giving their role back, so only those who hold it may."""
    ensure_outranks(actor, user)
    with transaction.atomic():
        updated = User.objects.filter(pk=user.pk, is_active=False).update(is_active=True)
        if updated:
            record_event(
                action=AuditAction.USER_ENABLED,
                user=actor,
                object_type="user",
                object_name=user.email,
                ip=ip,
            )
    user.refresh_from_db(fields=["is_active"])
    return user


def delete_user(*, user, actor, ip=None):
    """Delete ``user`` with their logins, API keys and tokens; the audit log keeps their email.

    Sessions are the audit trail of who reached which target: a user who has any stays (disable
    them instead), so that no trail loses its owner.
    """
    _ensure_not_self(user, actor, "delete")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        ensure_outranks(actor, user)
        _ensure_not_last_admin(user)
        if user.sessions.exists():
            raise Conflict("This user has sessions in the audit trail; disable the account instead.")
        email = user.email
        user.delete()
        record_event(
            action=AuditAction.USER_DELETED,
            user=actor,
            object_type="user",
            object_name=email,
            ip=ip,
        )


def end_user_logins(*, user, actor, ip=None):
    """Force-logout ``user`` from every browser; return how many logins were ended."""
    ensure_outranks(actor, user)
    with transaction.atomic():
        ended = LoginSession.objects.filter(user=user).delete()[0]
        record_event(
            action=AuditAction.USER_FORCE_LOGOUT,
            user=actor,
            object_type="user",
            object_name=user.email,
            ip=ip,
            details=f"{ended} web login(s) ended",
        )
        _revoke_after_commit(user, actor, ip)
    return ended


def end_login(*, login, actor, ip=None):
    """Sign one browser out (a LoginSession row); the user's live sessions go on."""
    if login.user is not None:
        ensure_outranks(actor, login.user)
    with transaction.atomic():
        login.delete()
        record_event(
            action=AuditAction.USER_FORCE_LOGOUT,
            user=actor,
            object_type="user",
            object_name=login.user.email if login.user else "",
            ip=ip,
            details="1 web login ended",
        )
