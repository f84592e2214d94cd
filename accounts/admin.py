from django import forms
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.models import Group
from django.db.models import Count
from django.template.response import TemplateResponse

from accounts.admin_base import AuditedAdmin, ServiceAdmin, action_permission
from accounts.authentication import client_ip
from accounts.choices import AuditAction
from accounts.models import ApiKey, AuditEvent, GroupRoleMapping, LoginSession, Role, User, UserToken
from accounts.permissions import ensure_groups_grantable, holds_all
from accounts.roles import Perm
from accounts.services import group_mappings
from accounts.services import roles as role_service
from accounts.services import tokens, users
from pam.exceptions import ServiceError


class ReadOnlyAdmin(ServiceAdmin):
    """For records written only by the product (audit rows, logins, tokens)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class UserCreationForm(auth_forms.UserCreationForm):
    class Meta:
        model = User
        fields = ["username", "email", "display_name", "role"]


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(AuditedAdmin, auth_admin.UserAdmin):
    """Users; creation, role, disabling and deletion go through the services, and a user
    holding permissions the editor lacks cannot be changed (their password reset) at all."""

    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ["username", "email", "display_name", "role", "is_active", "auth_source", "last_login"]
    list_filter = ["role", "is_active", "auth_source", "groups"]
    search_fields = ["username", "email", "display_name"]
    ordering = ["username"]
    filter_horizontal = ["groups"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Profile", {"fields": ["email", "display_name", "auth_source"]}),
        ("Access", {"fields": ["role", "groups", "is_active"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["username", "email", "display_name", "role", "password1", "password2"]}),
    ]
    actions = ["disable_users", "enable_users", "end_logins"]
    # Creation and deletion are audited by their services; profile and password changes here.
    audit_actions = {"changed": AuditAction.ADMIN_CHANGED}

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._outranks(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._outranks(request, obj)

    def _outranks(self, request, user):
        return user is None or holds_all(request.user, user.role.permission_set)

    def user_change_password(self, request, id, form_url=""):
        return self._refusals_as_messages(request, super().user_change_password, id, form_url)

    def save_model(self, request, obj, form, change):
        ip = client_ip(request)
        if not change:
            users.create_user(user=obj, actor=request.user, ip=ip)
            return
        # Role and the disabled flag change only through the services (audit, grant checks,
        # last-admin guard, ending logins); everything else is a plain save.
        stored = User.objects.get(pk=obj.pk)
        new_role, new_active = obj.role, obj.is_active
        obj.role, obj.is_active = stored.role, stored.is_active
        super().save_model(request, obj, form, change)
        if new_role.pk != stored.role_id:
            users.set_user_role(user=obj, role=new_role, actor=request.user, ip=ip)
        if new_active != stored.is_active:
            service = users.enable_user if new_active else users.disable_user
            service(user=obj, actor=request.user, ip=ip)
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        if "groups" in form.cleaned_data:
            ensure_groups_grantable(request.user, form.instance, form.cleaned_data["groups"])
        super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        users.delete_user(user=obj, actor=request.user, ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        for user in queryset:
            self.delete_model(request, user)

    @admin.action(description="Disable selected users", permissions=["change"])
    def disable_users(self, request, queryset):
        for user in queryset:
            users.disable_user(user=user, actor=request.user, ip=client_ip(request))

    @admin.action(description="Enable selected users", permissions=["change"])
    def enable_users(self, request, queryset):
        for user in queryset:
            users.enable_user(user=user, actor=request.user, ip=client_ip(request))

    @admin.action(description="End the web logins of selected users", permissions=["change"])
    def end_logins(self, request, queryset):
        ended = sum(users.end_user_logins(user=u, actor=request.user, ip=client_ip(request)) for u in queryset)
        self.message_user(request, f"{ended} web login(s) ended.")


class RoleForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        choices=Perm.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Role
        fields = ["name", "description", "permissions"]


@admin.register(Role)
class RoleAdmin(ServiceAdmin):
    form = RoleForm
    list_display = ["name", "builtin", "description", "permission_count", "user_count"]
    list_filter = ["builtin"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(user_count=Count("users"))

    @admin.display(description="Permissions")
    def permission_count(self, role):
        return len(role.permission_set)

    @admin.display(description="Users", ordering="user_count")
    def user_count(self, role):
        return role.user_count

    def get_readonly_fields(self, request, obj=None):
        return ["name"] if obj else []

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not (obj and obj.builtin)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.builtin)

    def save_model(self, request, obj, form, change):
        role_service.save_role(role=obj, actor=request.user, ip=client_ip(request))

    def delete_model(self, request, obj):
        role_service.delete_role(role=obj, actor=request.user, ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        for role in queryset:
            self.delete_model(request, role)


class ApiKeyForm(forms.ModelForm):
    allowed_ips = forms.CharField(
        required=False,
        help_text="Comma-separated addresses or CIDR networks; empty allows any address.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "user", "expires_at", "allowed_ips"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["allowed_ips"] = ", ".join(self.instance.allowed_ips or [])

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and cleaned.get("user") and not cleaned["user"].is_active:
            self.add_error("user", "The user is disabled.")
        if "expires_at" in cleaned:
            try:
                tokens.token_expiry(cleaned["expires_at"])
            except ServiceError as exc:
                self.add_error("expires_at", exc.message)
        return cleaned

    def clean_allowed_ips(self):
        values = [v for v in self.cleaned_data["allowed_ips"].replace("\n", ",").split(",") if v.strip()]
        try:
            return tokens.parse_allowed_ips(values)
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceAdmin):
    """API keys: the secret is generated on save and shown on the next page only; a blank
    expiry means the longest allowed (TOKEN_MAX_LIFETIME_DAYS)."""

    form = ApiKeyForm
    list_display = ["name", "user", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "expires_at"]
    search_fields = ["name", "user__username", "user__email"]
    readonly_fields = ["created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "name", "user"] if obj else self.readonly_fields

    has_revoke_permission = action_permission("revoke")

    def save_model(self, request, obj, form, change):
        if change:
            tokens.update_api_key(
                api_key=obj,
                actor=request.user,
                expires_at=obj.expires_at,
                allowed_ips=obj.allowed_ips,
                ip=client_ip(request),
            )
            return
        key, obj.plaintext = tokens.issue_api_key(
            name=obj.name,
            user=obj.user,
            actor=request.user,
            expires_at=obj.expires_at,
            allowed_ips=obj.allowed_ips,
            ip=client_ip(request),
        )
        obj.pk, obj.expires_at = key.pk, key.expires_at

    def response_add(self, request, obj, post_url_continue=None):
        context = {**self.admin_site.each_context(request), "key": obj, "token": obj.plaintext, "opts": self.opts}
        return TemplateResponse(request, "admin/accounts/apikey/created.html", context)

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke_keys(self, request, queryset):
        for key in queryset:
            tokens.revoke_api_key(api_key=key, actor=request.user, ip=client_ip(request))
        self.message_user(request, "Revoked.")


@admin.register(UserToken)
class UserTokenAdmin(ReadOnlyAdmin):
    list_display = ["name", "user", "hint", "max_role", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["max_role", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username", "user__email", "hint"]
    fields = list_display
    actions = ["revoke_tokens"]
    has_revoke_permission = action_permission("revoke")

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request, queryset):
        for token in queryset.select_related("user"):
            tokens.revoke_user_token(token=token, actor=request.user, ip=client_ip(request))
        self.message_user(request, "Revoked.")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "user_email", "object_type", "object_name", "ip_addr", "repeats"]
    list_filter = ["action", "object_type"]
    search_fields = ["user_email", "object_name", "ip_addr", "details"]
    date_hierarchy = "created_at"
    fields = [*list_display, "last_seen_at", "details"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LoginSession)
class LoginSessionAdmin(ReadOnlyAdmin):
    """Browser logins; deleting one signs that browser out. The session data is never shown."""

    list_display = ["user", "created_at", "expire_date"]
    list_filter = ["expire_date"]
    search_fields = ["user__username", "user__email"]
    fields = list_display

    def delete_model(self, request, obj):
        users.end_login(login=obj, actor=request.user, ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        for login in queryset.select_related("user__role"):
            self.delete_model(request, login)


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(ServiceAdmin):
    """Single sign-on groups and the role they give at each sign-on (highest wins)."""

    list_display = ["oidc_group", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["oidc_group"]

    def save_model(self, request, obj, form, change):
        fields = {"oidc_group": obj.oidc_group, "role": obj.role, "actor": request.user, "ip": client_ip(request)}
        if change:
            group_mappings.update_mapping(mapping=obj, **fields)
        else:
            obj.pk = group_mappings.create_mapping(**fields).pk

    def delete_model(self, request, obj):
        group_mappings.delete_mapping(actor=request.user, mapping=obj, ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        for mapping in queryset.select_related("role"):
            self.delete_model(request, mapping)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(AuditedAdmin):
    """Groups a user belongs to (from single sign-on or set here); they scope address-book folders."""

    list_display = ["name", "member_count"]
    search_fields = ["name"]
    fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, group):
        return group.member_count


admin.site.site_header = admin.site.site_title = "PAM administration"
admin.site.index_title = "Administration"
