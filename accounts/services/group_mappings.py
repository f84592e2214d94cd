"""Group-to-role mappings (session-broker): which role a single sign-on group confers.

When a user's groups map to several roles, the highest wins: the role granting the most
permissions (the built-in ladder grows monotonically, so admin > poweruser > operator > viewer),
ties broken by name so the outcome never depends on ordering.

A mapping grants its role to every member of the group at their next sign-on, so whoever creates,
changes or deletes one must hold every permission of the roles involved.
"""

from django.db import IntegrityError, transaction

from accounts.choices import AuditAction
from accounts.models import GroupRoleMapping
from accounts.permissions import ensure_grantable
from accounts.services.audit import record_event
from pam.exceptions import Conflict


def rank(role):
    return (len(role.permission_set), role.pk)


def role_for_groups(groups):
    """Return the highest role mapped from ``groups``, or None when none is mapped."""
    mapped = [m.role for m in GroupRoleMapping.objects.filter(oidc_group__in=list(groups)).select_related("role")]
    return max(mapped, key=rank, default=None)


def _audit(actor, mapping, ip, verb):
    record_event(
        action=AuditAction.GROUP_MAPPING_CHANGED,
        user=actor,
        object_type="group_mapping",
        object_name=mapping.oidc_group,
        ip=ip,
        details=f"{verb}: {mapping.oidc_group} -> {mapping.role_id}",
    )


def create_mapping(*, actor, oidc_group, role, ip=None):
    """Map ``oidc_group`` to ``role``."""
    ensure_grantable(actor, role.permission_set)
    try:
        with transaction.atomic():
            mapping = GroupRoleMapping.objects.create(oidc_group=oidc_group, role=role)
            _audit(actor, mapping, ip, "created")
    except IntegrityError:
        raise Conflict(f"A mapping for the group {oidc_group!r} already exists.", field="oidc_group") from None
    return mapping


def update_mapping(*, actor, mapping, oidc_group, role, ip=None):
    """Change a mapping's group or role."""
    stored = GroupRoleMapping.objects.select_related("role").get(pk=mapping.pk)
    ensure_grantable(actor, role.permission_set | stored.role.permission_set)
    try:
        with transaction.atomic():
            mapping.oidc_group, mapping.role = oidc_group, role
            mapping.save(update_fields=["oidc_group", "role"])
            _audit(actor, mapping, ip, "changed")
    except IntegrityError:
        raise Conflict(f"A mapping for the group {oidc_group!r} already exists.", field="oidc_group") from None
    return mapping


def delete_mapping(*, actor, mapping, ip=None):
    """Delete a mapping; its members keep their role until their next sign-on."""
    ensure_grantable(actor, mapping.role.permission_set)
    with transaction.atomic():
        _audit(actor, mapping, ip, "deleted")
        mapping.delete()
