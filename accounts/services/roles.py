"""Custom roles: named sets of permissions that admins create beside the built-in ladder.

A role is a grant to everyone who has it, so whoever saves or deletes one must hold every
permission it has had and will have (accounts.permissions.ensure_grantable).
"""

from functools import partial

from django.db import transaction

from accounts.choices import AuditAction
from accounts.models import Role, User
from accounts.permissions import ensure_grantable
from accounts.roles import Perm
from accounts.services.audit import record_event
from accounts.signals import access_narrowed
from pam.exceptions import Conflict, InvalidInput


def save_role(*, role, actor, ip=None):
    """Create or update a custom role; built-in roles are fixed."""
    if role.builtin:
        raise InvalidInput("Built-in roles cannot be changed.")
    unknown = sorted(set(role.permissions) - set(Perm.values))
    if unknown:
        raise InvalidInput(f"Unknown permissions: {', '.join(unknown)}.", field="permissions")
    role.permissions = sorted(set(role.permissions))
    stored = Role.objects.filter(pk=role.pk).first()
    ensure_grantable(actor, set(role.permissions) | (stored.permission_set if stored else set()))
    with transaction.atomic():
        role.save()
        if stored and not set(role.permissions) >= stored.permission_set:
            for user in role.users.all():
                transaction.on_commit(partial(access_narrowed.send, sender=User, user=user))
        record_event(
            action=AuditAction.ROLE_SAVED,
            user=actor,
            object_type="role",
            object_name=role.name,
            ip=ip,
            details=", ".join(role.permissions),
        )
    return role


def delete_role(*, role, actor, ip=None):
    """Delete a custom role that no user or token refers to."""
    if role.builtin:
        raise InvalidInput("Built-in roles cannot be deleted.")
    ensure_grantable(actor, role.permission_set)
    if role.users.exists() or role.capped_tokens.live().exists() or role.group_mappings.exists():
        raise Conflict(f"Role {role.name!r} is still assigned; reassign its users, tokens and group mappings first.")
    with transaction.atomic():
        name = role.name
        role.capped_tokens.exclude(revoked_at=None).update(max_role=None)
        role.delete()
        record_event(action=AuditAction.ROLE_DELETED, user=actor, object_type="role", object_name=name, ip=ip)
