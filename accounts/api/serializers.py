from rest_framework import serializers

from accounts.models import AuditEvent, GroupRoleMapping, Role, User, UserToken
from accounts.services.tokens import TOKEN_NAME_MAX
from pam.rest.fields import StrictCharField


class RoleField(serializers.SlugRelatedField):
    default_error_messages = {
        "does_not_exist": "Unknown role {value!r}; valid roles: {choices}.",
        "invalid": "A role is a name such as 'operator'.",
    }

    def __init__(self, **kwargs):
        super().__init__(slug_field="name", queryset=Role.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        role = self.get_queryset().filter(name=data).first()
        if role is None:
            choices = ", ".join(self.get_queryset().values_list("name", flat=True))
            self.fail("does_not_exist", value=data, choices=choices)
        return role


class UserSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="get_full_name", read_only=True)
    role = serializers.CharField(source="role_id", read_only=True)
    groups = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    disabled = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(source="date_joined", read_only=True)

    class Meta:
        model = User
        fields = [
            "email",
            "username",
            "name",
            "role",
            "groups",
            "disabled",
            "auth_source",
            "last_login",
            "created_at",
        ]
        read_only_fields = fields


class UserRoleSerializer(serializers.Serializer):
    role = RoleField()


class ForceLogoutSerializer(serializers.Serializer):
    email = serializers.EmailField()
    web_sessions_ended = serializers.IntegerField()


class MeSerializer(serializers.Serializer):
    name = serializers.CharField()
    email = serializers.EmailField()
    username = serializers.CharField()
    role = serializers.CharField()
    groups = serializers.ListField(child=serializers.CharField())
    permissions = serializers.ListField(child=serializers.CharField())
    auth_type = serializers.CharField()
    vault_enabled = serializers.BooleanField()
    vault_configured = serializers.BooleanField()


class AuthStatusSerializer(serializers.Serializer):
    oidc_enabled = serializers.BooleanField()
    site_title = serializers.CharField()


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()
    database = serializers.CharField()


class TokenCreateSerializer(serializers.Serializer):
    name = StrictCharField(min_length=1, max_length=TOKEN_NAME_MAX, trim_whitespace=False)
    max_role = RoleField(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class AdminTokenCreateSerializer(TokenCreateSerializer):
    email = serializers.EmailField()

    def validate_email(self, value):
        user = User.objects.select_related("role").filter(email=value.strip().lower()).first()
        if user is None:
            raise serializers.ValidationError("No user has this email address.")
        return user


class UserTokenSerializer(serializers.ModelSerializer):
    max_role = serializers.CharField(source="max_role_id", read_only=True, allow_null=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = UserToken
        fields = ["id", "name", "email", "hint", "max_role", "expires_at", "created_at", "last_used_at"]
        read_only_fields = fields


class CreatedTokenSerializer(UserTokenSerializer):
    """The one response that carries the plaintext token."""

    token = serializers.CharField(read_only=True)

    class Meta(UserTokenSerializer.Meta):
        fields = ["id", "name", "email", "token", "max_role", "expires_at", "created_at"]
        read_only_fields = fields


class TokenAuditSerializer(serializers.ModelSerializer):
    token_name = serializers.CharField(source="object_name")
    details = serializers.CharField(source="summary")  # says how often a summarised refusal repeated

    class Meta:
        model = AuditEvent
        fields = ["created_at", "user_email", "token_name", "action", "ip_addr", "details"]
        read_only_fields = fields


class TokenAuditQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    email = serializers.CharField(required=False, max_length=254)


class GroupMappingSerializer(serializers.ModelSerializer):
    oidc_group = StrictCharField(min_length=1, max_length=150)
    role = RoleField()

    class Meta:
        model = GroupRoleMapping
        fields = ["id", "oidc_group", "role", "created_at"]
        read_only_fields = ["id", "created_at"]
