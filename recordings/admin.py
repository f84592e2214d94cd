from django.contrib import admin

from accounts.admin_base import AuditedAdmin
from recordings.models import Recording


@admin.register(Recording)
class RecordingAdmin(AuditedAdmin):
    list_display = ["name", "session", "format", "size", "started_at", "ended_at"]
    list_filter = ["format"]
    search_fields = ["name", "session__id", "session__host"]
    date_hierarchy = "started_at"
    list_select_related = ["session"]
