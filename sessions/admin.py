from django.contrib import admin

from accounts.admin_base import ServiceAdmin, action_permission
from accounts.authentication import client_ip
from sessions.models import Session, SessionChannel, TransferredFile, Viewer
from sessions.services.lifecycle import terminate_session


@admin.register(Session)
class SessionAdmin(ServiceAdmin):
    """The session trail; credentials (``secrets``) are never shown."""

    list_display = ["id", "session_type", "owner", "host", "port", "username", "status", "created_at", "ended_at"]
    list_filter = ["status", "session_type", "share_mode", "recording_enabled"]
    search_fields = ["id", "host", "username", "owner__email", "owner__username", "client_ip", "node"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    exclude = ["secrets", "share_digest"]
    readonly_fields = [f.name for f in Session._meta.fields if f.name not in ("secrets", "share_digest")]
    actions = ["terminate"]
    has_terminate_permission = action_permission("terminate")

    @admin.action(description="Terminate selected live sessions", permissions=["terminate"])
    def terminate(self, request, queryset):
        for session in queryset:
            if session.is_live:
                terminate_session(actor=request.user, session=session, ip=client_ip(request))
        self.message_user(request, "Terminated.")


@admin.register(Viewer)
class ViewerAdmin(ServiceAdmin):
    list_display = ["session", "user", "access", "node", "client_ip", "joined_at"]
    list_filter = ["access"]
    search_fields = ["user__email", "session__id", "client_ip"]
    list_select_related = ["user", "session"]


class ReadOnlyTrailAdmin(ServiceAdmin):
    """A session's trail is written by the session alone: read-only here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SessionChannel)
class SessionChannelAdmin(ReadOnlyTrailAdmin):
    list_display = ["session", "kind", "opened_at", "closed_at", "bytes_in", "bytes_out"]
    list_filter = ["kind"]
    search_fields = ["session__id"]
    list_select_related = ["session"]


@admin.register(TransferredFile)
class TransferredFileAdmin(ReadOnlyTrailAdmin):
    list_display = ["name", "channel", "direction", "size", "sha256", "status", "opened_at"]
    list_filter = ["direction", "status"]
    search_fields = ["name", "path", "sha256", "channel__session__id"]
