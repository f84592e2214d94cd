from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts import roles
from accounts.choices import AuditAction, AuthSource

role_name_validator = RegexValidator(
    r"^[a-z][a-z0-9_-]{0,49}\Z",
    "Role names are 1-50 lowercase letters, digits, '-' or '_', starting with a letter.",
)
api_key_name_validator = RegexValidator(
    r"^(?!pamu_)[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z",
    "API key names are 1-100 letters, digits, '.', '-' or '_' and may not start with 'pamu_'.",
)


class Role(models.Model):
    """A named set of permissions: one of the built-in ladder or a custom role made by an admin.

    Built-in rows exist so users and shares can refer to every role alike; their permissions
    come from ``accounts.roles`` and are never stored here.
    """

    name = models.CharField(primary_key=True, max_length=50, validators=[role_name_validator])
    description = models.CharField(max_length=200, blank=True)
    builtin = models.BooleanField(default=False, editable=False)
    permissions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def permission_set(self):
        builtin = roles.builtin_permissions(self.name) if self.builtin else None
        return builtin if builtin is not None else frozenset(self.permissions)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, username, email, password=None, **extra):
        if not username:
            raise ValueError("A username is required")
        if not email:
            raise ValueError("An email address is required")
        user = self.model(username=username, email=email, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username, email, password=None, **extra):
        extra["role_id"] = roles.ADMIN
        return self.create_user(username, email, password, **extra)


class User(AbstractBaseUser):
    """A person who signs in to PAM: locally or through single sign-on.

    ``is_active`` is the disabled flag: a disabled user's logins, API keys and tokens stop
    working at once. What the user may do comes only from ``role`` (see accounts.permissions).
    """

    username = models.CharField(
        max_length=150,
        unique=True,
        validators=[RegexValidator(r"^[\w.@+-]+\Z", "Letters, digits and @/./+/-/_ only.")],
    )
    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    role = models.ForeignKey(
        Role, on_delete=models.PROTECT, default=roles.DEFAULT_ROLE, related_name="users"
    )
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="members")
    is_active = models.BooleanField(
        "active", default=True, help_text="Uncheck to disable: blocks login, keys and tokens."
    )
    auth_source = models.CharField(
        max_length=10, choices=AuthSource.choices, default=AuthSource.LOCAL
    )
    oidc_subject = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text="The provider's stable id (sub) of a single sign-on user.",
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        ordering = ["username"]

    def __str__(self):
        return self.username

    def clean(self):
        super().clean()
        self.email = self.email.strip().lower()

    def save(self, *args, **kwargs):
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    def get_full_name(self):
        return self.display_name or self.username

    def get_short_name(self):
        return self.username

    @property
    def disabled(self):
        return not self.is_active

    # Django admin asks these; they answer from the same role table as every other check.
    @property
    def is_staff(self):
        from accounts.permissions import can

        return can(self, roles.Perm.ADMIN_SITE)

    def has_perm(self, perm, obj=None):
        """Answer a catalog permission, or a Django admin one through ``roles.ADMIN_PERMS``."""
        from accounts.permissions import can

        if perm in roles.Perm.values:
            return can(self, perm)
        required = roles.admin_permissions(perm)
        return required is not None and self.is_staff and all(can(self, p) for p in required)

    def has_perms(self, perm_list, obj=None):
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label):
        return self.is_staff


class GroupRoleMapping(models.Model):
    """session-broker: single sign-on users in ``oidc_group`` get ``role`` at login (the
    highest mapped role wins)."""

    oidc_group = models.CharField(max_length=150, unique=True)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="group_mappings")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["oidc_group"]
        verbose_name = "group-to-role mapping"

    def __str__(self):
        return f"{self.oidc_group} -> {self.role_id}"


class CredentialQuerySet(models.QuerySet):
    def live(self):
        return self.filter(revoked_at__isnull=True)


class Credential(models.Model):
    """What API keys and personal tokens share: a lifetime, and revocation that keeps the row."""

    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        abstract = True


class ApiKey(Credential):
    """A machine credential ``name:secret`` that acts as its user; only a digest is stored."""

    name = models.CharField(max_length=100, unique=True, validators=[api_key_name_validator])
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    digest = models.CharField(max_length=64, editable=False)
    allowed_ips = models.JSONField(
        default=list, blank=True, help_text="Client addresses or CIDR networks; empty: any."
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<ApiKey {self.name!r} user={self.user_id}>"


class UserToken(Credential):
    """A personal token ``pamu_…`` of one user, optionally capped by ``max_role``.

    Revoked tokens keep their row (with ``revoked_at``) so a later use is audited by name;
    names are unique among a user's live tokens.
    """

    PREFIX = "pamu_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=12, editable=False, help_text="First characters, to tell tokens apart.")
    max_role = models.ForeignKey(
        Role, null=True, blank=True, on_delete=models.PROTECT, related_name="capped_tokens"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=Q(revoked_at__isnull=True),
                name="unique_live_token_name_per_user",
            )
        ]

    def __str__(self):
        return f"{self.user} / {self.name}"

    def __repr__(self):
        return f"<UserToken {self.id} {self.name!r} user={self.user_id}>"


class AuditEvent(models.Model):
    """One security-relevant event: who did what to which object, from which address.

    ``user_email`` is kept beside the foreign key so the trail survives the user's deletion.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    user_email = models.CharField(max_length=254, blank=True, db_index=True)
    # One of AuditAction; not declared as choices, so a new action needs no migration.
    action = models.CharField(max_length=40, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_name = models.CharField(max_length=200, blank=True)
    ip_addr = models.GenericIPAddressField(null=True, blank=True)
    details = models.TextField(blank=True)
    # Failures an attacker can repeat at will are one row per window (accounts.services.audit):
    # how many times it happened, and when last.
    repeats = models.PositiveIntegerField(default=1, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.user_email}"

    @property
    def summary(self):
        """The details, saying how often a summarised event happened."""
        if self.repeats <= 1:
            return self.details
        times = f"{self.repeats} times, last at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
        return f"{self.details} ({times})" if self.details else times


class LoginSession(AbstractBaseSession):
    """A browser login, stored with its user so an admin can end all of a user's logins.

    ``session_key`` is the SHA-256 of the cookie's key (accounts.session_store), never the key.
    """

    session_key = models.CharField("session key digest", max_length=64, primary_key=True)
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="login_sessions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    @classmethod
    def get_session_store_class(cls):
        from accounts.session_store import SessionStore

        return SessionStore
