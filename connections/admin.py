from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from accounts.admin_base import AuditedAdmin, SecretsNeverShownInline, ServiceAdmin, action_permission
from accounts.authentication import client_ip
from accounts.choices import AuditAction
from connections.models import Connection, ConnectionGroup, ConnectionTag, JumpHop, Share, Tunnel
from connections.services.connections import moved_secrets
from connections.services.tunnels import stop_tunnels
from pam.exceptions import ServiceError
from pam.sshkeys import InvalidKey, load_private_key
from targets.addresses import check_literal, check_url


class TargetForm(forms.ModelForm):
    """The same checks the API makes: a usable private key, a host not on the deny list."""

    def clean_private_key(self):
        key = self.cleaned_data.get("private_key")
        if key:
            try:
                load_private_key(key)
            except InvalidKey as exc:
                raise forms.ValidationError(str(exc)) from None
        return key

    def clean_host(self):
        host = self.cleaned_data.get("host", "")
        try:
            check_literal(host, self.cleaned_data.get("port") or 0)
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None
        return host

    def clean_url(self):
        url = self.cleaned_data.get("url", "")
        try:
            if url:
                check_url(url)
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None
        return url


def drop_moved_secrets(request, form):
    """Apply the API's rule to an admin change (connections.services.connections.moved_secrets):
    secrets not typed again are dropped from a target moved by someone who may not read them."""
    obj = form.instance
    if obj._state.adding or not form.has_changed():
        return []
    stored = type(obj)._base_manager.get(pk=obj.pk)
    dropped = moved_secrets(actor=request.user, stored=stored, changes={n: form.cleaned_data[n] for n in form.changed_data})
    for name in dropped:
        setattr(obj, name, "")
    if dropped:
        messages.warning(request, f"{obj}: the stored {', '.join(dropped)} were dropped; the target changed.")
    return dropped


class TagInline(admin.TabularInline):
    model = ConnectionTag
    extra = 0


class JumpHopInline(SecretsNeverShownInline, admin.TabularInline):
    model = JumpHop
    form = TargetForm
    extra = 0


class ShareInline(admin.TabularInline):
    model = Share
    extra = 0
    fields = ["user", "role", "created_at", "created_by"]
    readonly_fields = ["created_at", "created_by"]


@admin.register(Connection)
class ConnectionAdmin(AuditedAdmin):
    """Connections; password and private key are write-only fields (blank keeps the stored one)."""

    form = TargetForm
    list_display = ["name", "protocol", "host", "port", "owner", "group", "shared", "health_status", "updated_at"]
    list_filter = ["protocol", "shared", "health_status", "recording_enabled", "group__scope"]
    search_fields = ["id", "name", "display_name", "host", "url", "username", "tag_set__name"]
    list_select_related = ["owner", "group"]
    raw_id_fields = ["owner", "group"]
    readonly_fields = ["id", "health_status", "health_latency_ms", "health_checked_at", "health_error", "created_at", "updated_at"]
    inlines = [TagInline, JumpHopInline, ShareInline]
    fieldsets = [
        (None, {"fields": ["id", "name", "display_name", "protocol", "owner", "group", "sort_order"]}),
        ("Target", {"fields": ["host", "port", "url", "username", "password", "private_key", "autofill", "skip_cert_validation"]}),
        ("Use", {"fields": ["shared", "recording_enabled", "prompt_credentials", "tunnels", "extra_config"]}),
        ("Health", {"fields": ["health_status", "health_latency_ms", "health_checked_at", "health_error", "created_at", "updated_at"]}),
    ]

    # Audited like the API's changes, with inline (jump host, share, tag) changes in the details.
    audit_actions = {
        "created": AuditAction.CONNECTION_CREATED,
        "changed": AuditAction.CONNECTION_UPDATED,
        "deleted": AuditAction.CONNECTION_DELETED,
    }

    def audit_name(self, obj):
        return f"{obj.pk} {obj.name}"

    def save_model(self, request, obj, form, change):
        drop_moved_secrets(request, form)
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if formset.model is JumpHop:
            for hop_form in formset.forms:
                if hop_form not in formset.deleted_forms:
                    drop_moved_secrets(request, hop_form)
        super().save_formset(request, form, formset, change)


@admin.register(ConnectionGroup)
class ConnectionGroupAdmin(AuditedAdmin):
    list_display = ["name", "scope", "owner", "parent", "connection_count", "sort_order"]
    list_filter = ["scope", "allowed_groups"]
    search_fields = ["id", "name", "description", "owner__username"]
    raw_id_fields = ["owner", "parent"]
    filter_horizontal = ["allowed_groups"]
    readonly_fields = ["id", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "parent").annotate(connection_count=Count("connections"))

    @admin.display(description="Connections", ordering="connection_count")
    def connection_count(self, folder):
        return folder.connection_count


@admin.register(Share)
class ShareAdmin(AuditedAdmin):
    list_display = ["id", "connection", "user", "role", "created_at", "created_by"]
    list_filter = ["role"]
    search_fields = ["id", "connection__name", "user__email"]
    raw_id_fields = ["connection", "user", "created_by"]
    list_select_related = ["connection", "user", "created_by"]


@admin.register(JumpHop)
class JumpHopAdmin(AuditedAdmin):
    list_display = ["connection", "position", "host", "port", "username"]
    search_fields = ["connection__name", "host", "username"]
    list_filter = ["port"]
    raw_id_fields = ["connection"]
    list_select_related = ["connection"]
    form = TargetForm

    def save_model(self, request, obj, form, change):
        drop_moved_secrets(request, form)
        super().save_model(request, obj, form, change)


@admin.register(ConnectionTag)
class ConnectionTagAdmin(AuditedAdmin):
    list_display = ["name", "connection"]
    search_fields = ["name", "connection__name"]
    list_filter = ["name"]
    raw_id_fields = ["connection"]
    list_select_related = ["connection"]


@admin.register(Tunnel)
class TunnelAdmin(ServiceAdmin):
    """Tunnel states as their workers report them: read-only, but stoppable."""

    list_display = ["connection", "local_port", "remote_host", "remote_port", "state", "node", "started_by", "updated_at"]
    list_filter = ["state"]
    search_fields = ["connection__name", "remote_host", "node", "started_by__email"]
    list_select_related = ["connection", "started_by"]
    readonly_fields = [f.name for f in Tunnel._meta.fields]
    actions = ["stop"]

    has_stop_permission = action_permission("stop")

    @admin.action(description="Stop the tunnels of the selected tunnels' connections", permissions=["stop"])
    def stop(self, request, queryset):
        stopped = 0
        for connection in Connection.objects.filter(pk__in=queryset.values("connection_id")):
            try:
                stopped += stop_tunnels(actor=request.user, connection=connection, ip=client_ip(request))
            except ServiceError as exc:
                self.message_user(request, f"{connection}: {exc.message}", level=messages.ERROR)
        self.message_user(request, f"{stopped} tunnel(s) asked to stop.")
