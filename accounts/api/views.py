from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import serializers as s
from accounts.authentication import client_ip
from accounts.choices import TOKEN_AUDIT_ACTIONS
from accounts.filters import UserFilterSet
from accounts.models import AuditEvent, GroupRoleMapping, User, UserToken
from accounts.permissions import (
    AUTHENTICATED,
    HasRequiredPerms,
    InteractiveLoginOnly,
    effective_permissions,
    effective_role,
)
from accounts.roles import Perm
from accounts.services import group_mappings, tokens, users
from pam import crypto


class HealthView(APIView):
    authentication_classes = []
    required_perms = {"get": None}

    @extend_schema(responses={200: s.HealthSerializer, 503: s.HealthSerializer})
    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            return Response({"status": "error", "database": "unavailable"}, status=503)
        return Response({"status": "ok", "database": "ok"})


class AuthStatusView(APIView):
    authentication_classes = []
    required_perms = {"get": None}

    @extend_schema(responses=s.AuthStatusSerializer)
    def get(self, request):
        return Response({"oidc_enabled": settings.OIDC_ENABLED, "site_title": settings.SITE_TITLE})


class MeView(APIView):
    required_perms = {"get": AUTHENTICATED}

    @extend_schema(responses=s.MeSerializer)
    def get(self, request):
        user = request.user
        try:
            crypto.keyring()
            vault_configured = True
        except (ImproperlyConfigured, OSError):  # a broken key shows here, not as a 500
            vault_configured = False
        return Response(
            {
                "name": user.get_full_name(),
                "email": user.email,
                "username": user.username,
                "role": effective_role(user),
                "groups": sorted(user.groups.values_list("name", flat=True)),
                "permissions": sorted(effective_permissions(user)),
                "auth_type": request.auth.kind,
                # The credential store is built in: always enabled, configured once the
                # master key loads.
                "vault_enabled": True,
                "vault_configured": vault_configured,
            }
        )


class UserViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = User.objects.select_related("role").prefetch_related("groups")
    serializer_class = s.UserSerializer
    filterset_class = UserFilterSet
    lookup_field = "email"
    lookup_value_regex = "[^/]+"
    required_perms = {
        "list": Perm.USERS_MANAGE,
        "destroy": Perm.USERS_MANAGE,
        "role": Perm.USERS_MANAGE,
        "disable": Perm.USERS_MANAGE,
        "enable": Perm.USERS_MANAGE,
        "sessions": Perm.USERS_MANAGE,
    }

    def get_object(self):
        self.kwargs[self.lookup_field] = self.kwargs[self.lookup_field].strip().lower()
        return super().get_object()

    @extend_schema(
        description="Delete a user. A user who has sessions (the audit trail) is a 409: disable them instead."
    )
    def destroy(self, request, email=None):
        users.delete_user(user=self.get_object(), actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.UserRoleSerializer, responses=s.UserSerializer)
    @action(detail=True, methods=["put"])
    def role(self, request, email=None):
        user = self.get_object()
        body = s.UserRoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = users.set_user_role(
            user=user, role=body.validated_data["role"], actor=request.user, ip=client_ip(request)
        )
        return Response(s.UserSerializer(user).data)

    @extend_schema(
        request=None,
        responses=s.UserSerializer,
        description="Disable a user: their web logins, tokens and keys stop at once and their live sessions end.",
    )
    @action(detail=True, methods=["post"])
    def disable(self, request, email=None):
        user = users.disable_user(user=self.get_object(), actor=request.user, ip=client_ip(request))
        return Response(s.UserSerializer(user).data)

    @extend_schema(request=None, responses=s.UserSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request, email=None):
        user = users.enable_user(user=self.get_object(), actor=request.user, ip=client_ip(request))
        return Response(s.UserSerializer(user).data)

    @extend_schema(
        request=None,
        responses=s.ForceLogoutSerializer,
        description="Force-logout: end the user's web logins and their live sessions.",
    )
    @action(detail=True, methods=["delete"])
    def sessions(self, request, email=None):
        user = self.get_object()
        ended = users.end_user_logins(user=user, actor=request.user, ip=client_ip(request))
        return Response({"email": user.email, "web_sessions_ended": ended})


class InteractiveCreateMixin:
    """Creating a token needs an interactive login: no API key or token mints tokens, for
    its own user or (through /api/admin/user-tokens) for anyone else."""

    def get_permissions(self):
        if self.action == "create":
            return [HasRequiredPerms(), InteractiveLoginOnly()]
        return super().get_permissions()


class MyTokenViewSet(InteractiveCreateMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.UserTokenSerializer
    required_perms = {
        "list": Perm.TOKENS_VIEW_OWN,
        "create": Perm.TOKENS_MANAGE_OWN,
        "destroy": Perm.TOKENS_MANAGE_OWN,
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return UserToken.objects.none()
        return UserToken.objects.live().filter(user=self.request.user).select_related("user")

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.CreatedTokenSerializer})
    def create(self, request):
        body = s.TokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, plaintext = tokens.issue_user_token(
            user=request.user, actor=request.user, ip=client_ip(request), **body.validated_data
        )
        token.token = plaintext
        return Response(s.CreatedTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        tokens.revoke_user_token(token=self.get_object(), actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserTokenViewSet(InteractiveCreateMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = UserToken.objects.live().select_related("user")
    serializer_class = s.UserTokenSerializer
    required_perms = {
        "list": Perm.TOKENS_MANAGE_ANY,
        "create": Perm.TOKENS_MANAGE_ANY,
        "destroy": Perm.TOKENS_MANAGE_ANY,
    }

    @extend_schema(request=s.AdminTokenCreateSerializer, responses={201: s.CreatedTokenSerializer})
    def create(self, request):
        body = s.AdminTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        token, plaintext = tokens.issue_user_token(
            user=fields.pop("email"), actor=request.user, ip=client_ip(request), **fields
        )
        token.token = plaintext
        return Response(s.CreatedTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        tokens.revoke_user_token(token=self.get_object(), actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenAuditViewSet(viewsets.GenericViewSet):
    queryset = AuditEvent.objects.filter(action__in=TOKEN_AUDIT_ACTIONS)
    serializer_class = s.TokenAuditSerializer
    required_perms = {"list": Perm.AUDIT_VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description="Most events to return (default 200, max 1000)."),
            OpenApiParameter("email", str, description="Only events of this user."),
        ]
    )
    def list(self, request):
        query = s.TokenAuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        events = self.get_queryset()
        if "email" in query.validated_data:
            events = events.filter(user_email__iexact=query.validated_data["email"].strip())
        events = events[: query.validated_data["limit"]]
        return Response(self.get_serializer(events, many=True).data)


class GroupMappingViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = GroupRoleMapping.objects.select_related("role")
    serializer_class = s.GroupMappingSerializer
    required_perms = {
        "list": Perm.GROUP_MAPPINGS_MANAGE,
        "create": Perm.GROUP_MAPPINGS_MANAGE,
        "update": Perm.GROUP_MAPPINGS_MANAGE,
        "destroy": Perm.GROUP_MAPPINGS_MANAGE,
    }

    def create(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        mapping = group_mappings.create_mapping(actor=request.user, ip=client_ip(request), **body.validated_data)
        return Response(self.get_serializer(mapping).data, status=status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        mapping = self.get_object()
        body = self.get_serializer(mapping, data=request.data)
        body.is_valid(raise_exception=True)
        mapping = group_mappings.update_mapping(
            actor=request.user, mapping=mapping, ip=client_ip(request), **body.validated_data
        )
        return Response(self.get_serializer(mapping).data)

    def destroy(self, request, pk=None):
        group_mappings.delete_mapping(actor=request.user, mapping=self.get_object(), ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
