"""Console pages for identity: home, personal tokens, users and the audit log.

The token and user pages render a shell and drive the documented API from the browser, so the
console and API clients go through the same checks.
"""

from functools import wraps
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from accounts.choices import AuditAction
from accounts.filters import AuditEventFilterSet
from accounts.models import AuditEvent, Role
from accounts.permissions import can, effective_permissions
from accounts.roles import Perm

AUDIT_PAGE_SIZE = 50


def require_perm(perm):
    """Let a signed-in user with ``perm`` through; others get the login page or a 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            if not can(request.user, perm):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


@login_required
def home(request):
    held = effective_permissions(request.user)
    catalog = [(perm.label, perm.value, perm.value in held) for perm in Perm]
    return render(request, "accounts/home.html", {"catalog": catalog})


def _assignable_roles(user):
    """Roles whose permissions ``user`` holds entirely, so a token may be capped at them."""
    held = effective_permissions(user)
    return [role for role in Role.objects.all() if role.permission_set <= held]


@require_perm(Perm.TOKENS_VIEW_OWN)
def tokens(request):
    return render(
        request,
        "accounts/tokens.html",
        {
            "roles": _assignable_roles(request.user),
            "can_manage": can(request.user, Perm.TOKENS_MANAGE_OWN),
            "max_lifetime_days": settings.TOKEN_MAX_LIFETIME_DAYS,
        },
    )


@require_perm(Perm.USERS_MANAGE)
def users(request):
    return render(request, "accounts/users.html", {"roles": Role.objects.all()})


@require_perm(Perm.AUDIT_VIEW)
def audit(request):
    filters = AuditEventFilterSet(request.GET, queryset=AuditEvent.objects.all())
    page = Paginator(filters.qs, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "accounts/audit.html",
        {
            "filters": filters,
            "page": page,
            "actions": AuditAction.choices,
            "query": query.urlencode(),
        },
    )


def sso_or_login_redirect(request):
    """Send an anonymous browser to sign in and back: through single sign-on when configured."""
    if settings.OIDC_ENABLED:
        return redirect(f"/auth/login?next={quote(request.get_full_path())}")
    return redirect_to_login(request.get_full_path())


def login_required_sso(view):
    """``login_required`` for deep links (quick connect, /client/…): straight through SSO."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return sso_or_login_redirect(request)
        return view(request, *args, **kwargs)

    return wrapper
