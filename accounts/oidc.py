"""Single sign-on with an OpenID Connect provider, on mozilla-django-oidc.

The provider is named by its issuer; its endpoints come from the discovery document
(``<issuer>/.well-known/openid-configuration``), fetched once and cached. Users are matched by
the provider's ``sub``; on their first sign-on an existing account with the same email is linked
only if the provider says ``email_verified`` and PAM_OIDC_LINK_BY_EMAIL is on (else the sign-on
is refused, never a second account for the address). At every sign-on their
name, email, groups and role are taken afresh from the claims: the role is the highest one the
group-to-role mappings give, else the configured default, and with no default the sign-on is
refused. Disabled users are refused at the callback.
"""

import logging
import threading
import time
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.http import Http404
from django.urls import reverse
from mozilla_django_oidc import auth as oidc_auth
from mozilla_django_oidc import views as oidc_views

from accounts.authentication import client_ip
from accounts.choices import AuditAction, AuthSource
from accounts.models import Role, User
from accounts.services.audit import record_event
from accounts.services.group_mappings import role_for_groups
from accounts.services.users import set_user_role
from pam.exceptions import Conflict

logger = logging.getLogger(__name__)

DISCOVERY_TTL = 3600
# mozilla-django-oidc setting -> discovery document key
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}

_lock = threading.Lock()
_discovery = {"issuer": None, "document": None, "fetched": 0.0}


class ProviderUnavailable(ImproperlyConfigured):
    """The provider's discovery document could not be read."""


def discovery():
    """Return the provider's discovery document, fetched at most once an hour."""
    with _lock:
        fresh = time.monotonic() - _discovery["fetched"] < DISCOVERY_TTL
        if _discovery["document"] and _discovery["issuer"] == settings.OIDC_ISSUER and fresh:
            return _discovery["document"]
        url = f"{settings.OIDC_ISSUER}/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(f"Cannot read the provider's discovery document at {url}: {exc}") from None
        if document.get("issuer", "").rstrip("/") != settings.OIDC_ISSUER:
            raise ProviderUnavailable(f"The discovery document at {url} names another issuer.")
        _discovery.update(issuer=settings.OIDC_ISSUER, document=document, fetched=time.monotonic())
        return document


def setting(attr, *args):
    """mozilla-django-oidc's settings, with the provider's endpoints from discovery."""
    if attr in DISCOVERED and settings.OIDC_ENABLED:
        return discovery()[DISCOVERED[attr]]
    return oidc_auth.import_from_settings(attr, *args)


def _email(claims):
    return claims["email"].strip().lower()


def _may_link_by_email(claims):
    """A provider's email links an existing account only when the provider verified it."""
    verified = claims.get("email_verified")
    # OpenID Connect Core 5.1 makes it a boolean; some providers' userinfo sends the string.
    return settings.OIDC_LINK_BY_EMAIL and (verified is True or str(verified).lower() == "true")


def _unique_username(claims):
    base = (claims.get(settings.OIDC_USERNAME_CLAIM) or claims["email"].split("@")[0])[:140]
    base = "".join(ch if ch.isalnum() or ch in "@.+-_" else "_" for ch in base) or "user"
    candidate, n = base, 1
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


class Backend(oidc_auth.OIDCAuthenticationBackend):
    """Authenticate single sign-on users and keep their profile, groups and role current."""

    get_settings = staticmethod(setting)

    def __init__(self, *args, **kwargs):
        # Built for every authenticate() call, also for local logins: read the provider lazily.
        self._ready = False

    def _prepare(self):
        if not self._ready:
            super().__init__()
            self._ready = True

    def authenticate(self, request, **kwargs):
        if not settings.OIDC_ENABLED or "nonce" not in kwargs:
            return None  # a local sign-in: not ours
        self._prepare()
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        """The signed-in user of a session, or None once they are disabled."""
        user = User.objects.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None

    def filter_users_by_claims(self, claims):
        by_subject = User.objects.filter(oidc_subject=claims["sub"])
        if by_subject.exists() or not _may_link_by_email(claims):
            return by_subject
        # First sign-on of an existing account: link it by email, if nothing else claimed it.
        return User.objects.filter(email=_email(claims), oidc_subject__isnull=True)

    def verify_claims(self, claims):
        if not claims.get("sub") or not claims.get("email"):
            return False
        if self._role(claims) is None:
            record_event(
                action=AuditAction.USER_LOGIN_FAILED,
                email=claims["email"].lower(),
                object_type="user",
                object_name=claims["email"].lower(),
                ip=client_ip(self.request),
                details="single sign-on refused: the user's groups map to no role",
            )
            return False
        return True

    @staticmethod
    def _groups(claims):
        groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
        if isinstance(groups, str):
            groups = [groups]
        return sorted({str(g)[:150] for g in groups if str(g).strip()})

    def _role(self, claims):
        role = role_for_groups(self._groups(claims))
        if role is None and settings.OIDC_DEFAULT_ROLE != "none":
            role = Role.objects.filter(pk=settings.OIDC_DEFAULT_ROLE).first()
        return role

    def create_user(self, claims):
        """Create the user of a first sign-on; refuse one whose email belongs to another account.

        The existing account was not linked (the provider did not verify the email, linking is
        off, or another identity holds it), so a second account would take over its address.
        """
        if User.objects.filter(email=_email(claims)).exists():
            record_event(
                action=AuditAction.USER_LOGIN_FAILED,
                email=_email(claims),
                object_type="user",
                object_name=_email(claims),
                ip=client_ip(self.request),
                details="single sign-on refused: an existing account has this email and was not linked "
                "(linking needs email_verified from the provider and PAM_OIDC_LINK_BY_EMAIL on)",
            )
            return None
        with transaction.atomic():
            user = User.objects.create_user(
                _unique_username(claims),
                claims["email"],
                None,
                auth_source=AuthSource.OIDC,
                oidc_subject=claims["sub"],
                role=self._role(claims),
            )
            return self.update_user(user, claims)

    def update_user(self, user, claims):
        """Refresh the user from the claims; the role follows the group mappings, except that
        the last active admin stays admin (accounts.services.users keeps that invariant)."""
        role = self._role(claims)
        ip = client_ip(self.request)
        with transaction.atomic():
            user.oidc_subject = claims["sub"]
            # An address another account already uses is not taken over; the user keeps theirs.
            if not User.objects.filter(email=_email(claims)).exclude(pk=user.pk).exists():
                user.email = claims["email"]
            user.display_name = str(claims.get(settings.OIDC_NAME_CLAIM) or "")[:150]
            user.auth_source = AuthSource.OIDC
            user.save(update_fields=["oidc_subject", "email", "display_name", "auth_source"])
            user.groups.set([Group.objects.get_or_create(name=name)[0] for name in self._groups(claims)])
            try:
                user = set_user_role(user=user, role=role, actor=None, ip=ip)
            except Conflict:
                record_event(
                    action=AuditAction.USER_ROLE_CHANGED,
                    user=user,
                    object_type="user",
                    object_name=user.email,
                    ip=ip,
                    details=f"kept {user.role_id}, not {role.pk} (group mappings at sign-on): "
                    "the last active admin",
                )
        return user


class LoginView(oidc_views.OIDCAuthenticationRequestView):
    """GET /auth/login: redirect to the provider (code flow with PKCE, state and nonce)."""

    get_settings = staticmethod(setting)

    def __init__(self, *args, **kwargs):
        super(oidc_views.OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except ProviderUnavailable as exc:
            logger.error("%s", exc)
            return _unavailable(request, "The single sign-on provider cannot be reached.")
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


class CallbackView(oidc_views.OIDCAuthenticationCallbackView):
    """GET /auth/callback: check state, exchange the code, sign the user in or refuse."""

    get_settings = staticmethod(setting)

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        self.user = None
        try:
            response = super().get(request)
        except SuspiciousOperation as exc:
            # A forged or replayed state, a wrong nonce or a bad token signature.
            record_event(action=AuditAction.USER_LOGIN_FAILED, ip=client_ip(request), details=f"single sign-on: {exc}")
            raise
        except (requests.RequestException, ProviderUnavailable) as exc:
            logger.error("single sign-on callback failed: %s", exc)
            return _unavailable(request, "The single sign-on provider cannot be reached.")
        if self.user is not None and not self.user.is_active:
            record_event(
                action=AuditAction.USER_LOGIN_FAILED,
                user=self.user,
                object_type="user",
                object_name=self.user.email,
                ip=client_ip(request),
                details="single sign-on refused: the user is disabled",
            )
        return response


class LogoutView(oidc_views.OIDCLogoutView):
    """GET or POST /auth/logout: end the PAM session, then the provider's when it offers one."""

    get_settings = staticmethod(setting)


def provider_logout_url(request):
    """Where to send the browser after signing out: the provider's end-session endpoint if any."""
    done = request.build_absolute_uri(reverse(settings.LOGOUT_REDIRECT_URL))
    try:
        endpoint = discovery().get("end_session_endpoint")
    except ProviderUnavailable:
        endpoint = None
    id_token = request.session.get("oidc_id_token")
    if not endpoint or not id_token:
        return done
    query = urlencode(
        {"id_token_hint": id_token, "post_logout_redirect_uri": done, "client_id": settings.OIDC_RP_CLIENT_ID}
    )
    return f"{endpoint}?{query}"


def _unavailable(request, message):
    from django.shortcuts import render

    return render(request, "accounts/sso_unavailable.html", {"message": message}, status=503)
