from django.contrib import admin

from accounts.admin_base import ServiceAdmin
from accounts.authentication import client_ip
from recordings.models import Recording
from recordings.services import delete_recording


@admin.register(Recording)
class RecordingAdmin(ServiceAdmin):
    """Recordings are evidence: read-only here, deleted only through the audited service."""

    list_display = ["name", "session", "format", "size", "index_status", "started_at", "ended_at"]
    list_filter = ["format", "index_status"]
    search_fields = ["name", "session__id", "session__host"]
    date_hierarchy = "started_at"
    list_select_related = ["session"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        delete_recording(actor=request.user, recording=obj, ip=client_ip(request), reason="in the admin site")

    def delete_queryset(self, request, queryset):
        for recording in queryset:
            self.delete_model(request, recording)
