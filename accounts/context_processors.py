from django.conf import settings

from accounts.permissions import can, effective_role
from accounts.roles import Perm

# The console's navigation: (label, URL name, permission needed or None for any signed-in user).
NAVIGATION = (
    ("Home", "console:home", None),
    ("Connections", "connections-console:index", None),
    ("Sessions", "sessions-console:index", Perm.SESSIONS_VIEW),
    ("Recordings", "recordings-console:index", Perm.RECORDINGS_VIEW),
    ("My tokens", "console:tokens", Perm.TOKENS_VIEW_OWN),
    ("Users", "console:users", Perm.USERS_MANAGE),
    ("Audit log", "console:audit", Perm.AUDIT_VIEW),
)


def console(request):
    """Give every console page the title, the SSO flag and the navigation the user may see."""
    user = getattr(request, "user", None)
    signed_in = bool(user and user.is_authenticated)
    return {
        "site_title": settings.SITE_TITLE,
        "oidc_enabled": settings.OIDC_ENABLED,
        "navigation": [
            {"label": label, "url_name": url_name}
            for label, url_name, perm in NAVIGATION
            if signed_in and (perm is None or can(user, perm))
        ],
        "can_use_admin": signed_in and can(user, Perm.ADMIN_SITE),
        "current_role": effective_role(user) if signed_in else "",
    }
