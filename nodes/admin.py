from django.contrib import admin

from accounts.admin_base import ServiceAdmin
from nodes.models import Node


@admin.register(Node)
class NodeAdmin(ServiceAdmin):
    list_display = ["id", "kind", "hostname", "pid", "started_at", "seen_at"]
    search_fields = ["id", "hostname"]
    list_filter = ["kind", "hostname"]
