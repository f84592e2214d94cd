"""Every authorization question is ``can(user, perm)``; DRF permission classes are built on it.

A user's permissions are those of their role, intersected with the ``max_role`` of the token
that authenticated the request (set once, at authentication, as ``user.token_cap``).
"""

from django.contrib.auth.models import Group
from rest_framework import permissions

from accounts import roles
from accounts.choices import AuthType
from pam.exceptions import Forbidden

# A view's required_perms value meaning "any authenticated user".
AUTHENTICATED = "authenticated"


def effective_permissions(user):
    """Return the frozenset of permissions ``user`` holds for this request."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cap = getattr(user, "token_cap", None)
    key = (user.role_id, cap.pk if cap else None)
    cached = user.__dict__.get("_pam_permissions")
    if cached and cached[0] == key:
        return cached[1]
    perms = roles.builtin_permissions(user.role_id)
    if perms is None:
        perms = user.role.permission_set
    if cap is not None:
        perms = perms & cap.permission_set
    user.__dict__["_pam_permissions"] = (key, perms)
    return perms


def effective_role(user):
    """Return the role name reported for this request: the token cap when it is the narrower."""
    cap = getattr(user, "token_cap", None)
    if cap is not None and cap.permission_set < user.role.permission_set:
        return cap.name
    return user.role_id


# "own" permissions and the "any" permission that covers other people's objects too.
OWN_OR_ANY = {
    roles.Perm.CONNECTIONS_EDIT_OWN: roles.Perm.CONNECTIONS_EDIT_ANY,
    roles.Perm.CONNECTIONS_DELETE_OWN: roles.Perm.CONNECTIONS_DELETE_ANY,
    roles.Perm.SESSIONS_TERMINATE_OWN: roles.Perm.SESSIONS_TERMINATE_ANY,
}


def can(user, perm, obj=None):
    """Answer whether ``user`` may do ``perm`` (a ``roles.Perm``), on ``obj`` if given.

    For an "own" permission and an object with ``owner_id``, the user must own the object
    or hold the matching "any" permission.
    """
    held = effective_permissions(user)
    if obj is not None and perm in OWN_OR_ANY:
        return OWN_OR_ANY[perm] in held or (perm in held and obj.owner_id == user.pk)
    return perm in held


def ensure_grantable(actor, permissions):
    """Refuse to hand out ``permissions`` beyond those ``actor`` holds for this request.

    Every grant passes through here: tokens and API keys (what they act with), role assignments,
    custom roles and group-to-role mappings. So nobody grants more than they hold, and only
    holders of every permission (admins) make admins. ``actor`` None is the command line, run
    by whoever controls the server.
    """
    missing = _missing(actor, permissions)
    if missing:
        raise Forbidden(f"You cannot grant permissions you do not hold: {', '.join(missing)}.")


def ensure_outranks(actor, user):
    """Refuse to change the account of a user who holds permissions ``actor`` lacks.

    Whoever may demote, disable, re-enable, delete or reset the password of a user could
    otherwise take over an admin's account, so only those holding all of its permissions may.
    """
    missing = _missing(actor, user.role.permission_set)
    if missing:
        raise Forbidden(f"{user.username} holds permissions you do not: {', '.join(missing)}.")


def ensure_groups_grantable(actor, user, groups):
    """Refuse to put ``user`` in a group ``actor`` is not in, unless ``actor`` manages the address book.

    A group opens the address-book folders allowed to it, and so the use of their stored
    credentials: like a permission, nobody hands that to others (or to themselves) without it.
    """
    if actor is None or can(actor, roles.Perm.ADDRESSBOOK_MANAGE):
        return
    joining = {group.pk for group in groups} - set(user.groups.values_list("pk", flat=True))
    outside = sorted(Group.objects.filter(pk__in=joining).exclude(members=actor).values_list("name", flat=True))
    if outside:
        raise Forbidden(f"You cannot add members to groups you are not in: {', '.join(outside)}.")


def holds_all(actor, permissions):
    """Answer whether ``actor`` holds every one of ``permissions`` (None: the command line)."""
    return not _missing(actor, permissions)


def _missing(actor, permissions):
    if actor is None:
        return []
    return sorted(set(permissions) - effective_permissions(actor))


class HasRequiredPerms(permissions.BasePermission):
    """Allow a view action only if the view's ``required_perms`` names it and the user has it.

    ``required_perms`` maps a viewset action (or, on a plain APIView, the lower-case HTTP
    method) to a ``Perm``, to ``AUTHENTICATED``, or to ``None`` for a public endpoint. An
    action missing from the map is denied, so a new action cannot be exposed by accident.
    """

    def has_permission(self, request, view):
        if not hasattr(view, request.method.lower()):
            return True  # no handler for this method: DRF answers 405 next
        action = getattr(view, "action", None) or request.method.lower()
        required = getattr(view, "required_perms", {})
        if action not in required:
            return False
        perm = required[action]
        if perm is None:
            return True
        if not (request.user and request.user.is_authenticated):
            return False
        return perm == AUTHENTICATED or can(request.user, perm)


class InteractiveLoginOnly(permissions.BasePermission):
    """Allow only a person signed in through the browser, not an API key or a token.

    session-broker: personal tokens are created by signed-in users, never by API keys; PAM
    also refuses tokens minting tokens (for their own user or, as an admin, for anyone), so a
    leaked token or key cannot outlive its own expiry nor spread to other credentials.
    """

    message = "Personal tokens can only be created from a signed-in browser session."

    def has_permission(self, request, view):
        context = request.auth
        return getattr(context, "kind", None) in (AuthType.LOCAL, AuthType.OIDC)
