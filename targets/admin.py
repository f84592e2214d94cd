from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin_base import AuditedAdmin, ServiceAdmin, action_permission
from accounts.authentication import client_ip
from pam.exceptions import ServiceError
from targets.models import HostKeySighting, KnownHost
from targets.services.hostkeys import accept_host_key


class HostKeySightingInline(admin.TabularInline):
    """Every key other than the pinned one offered on this route, with who met it and when."""

    model = HostKeySighting
    extra = 0
    fields = ["fingerprint", "key_type", "seen_by", "first_seen", "last_seen", "times"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


def _sightings_link(known, text):
    url = reverse("admin:targets_hostkeysighting_changelist")
    return format_html('<a href="{}?known_host={}">{}</a>', url, known.pk, text)


@admin.register(KnownHost)
class KnownHostAdmin(AuditedAdmin):
    """Pinned host keys, one per route; the differing keys met on a route wait below it."""

    list_display = [
        "address", "port", "path", "host", "key_type", "fingerprint", "differing_keys", "first_seen", "accepted_by"
    ]
    list_filter = ["key_type"]
    search_fields = ["host", "address", "path", "fingerprint", "sightings__fingerprint"]
    readonly_fields = [
        "host", "address", "port", "path", "key_type", "public_key", "fingerprint", "first_seen", "first_seen_by",
        "accepted_by", "compare_and_accept",
    ]
    inlines = [HostKeySightingInline]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(differing=Count("sightings"))

    @admin.display(description="Differing keys seen", ordering="differing")
    def differing_keys(self, known):
        return _sightings_link(known, known.differing) if known.differing else 0

    @admin.display(description="Differing keys")
    def compare_and_accept(self, known):
        return _sightings_link(known, "Compare them and accept one…")


@admin.register(HostKeySighting)
class HostKeySightingAdmin(ServiceAdmin):
    """Differing host keys, all of them side by side; an admin accepts exactly one per route."""

    list_display = [
        "where", "fingerprint", "key_type", "seen_by", "first_seen", "last_seen", "times", "pinned_fingerprint"
    ]
    list_filter = ["key_type"]
    search_fields = ["fingerprint", "known_host__address", "known_host__host", "known_host__path", "seen_by__email"]
    list_select_related = ["known_host", "seen_by"]
    readonly_fields = [
        "known_host", "key_type", "public_key", "fingerprint", "seen_by", "first_seen", "last_seen", "times"
    ]
    actions = ["accept"]
    has_accept_permission = action_permission("accept")

    def has_add_permission(self, request):
        return False

    @admin.display(description="Route", ordering="known_host__address")
    def where(self, sighting):
        return sighting.known_host.where

    @admin.display(description="Pinned key")
    def pinned_fingerprint(self, sighting):
        return sighting.known_host.fingerprint

    @admin.action(description="Accept the selected key as the route's pinned key", permissions=["accept"])
    def accept(self, request, queryset):
        chosen = list(queryset)
        if len({s.known_host_id for s in chosen}) != len(chosen):
            self.message_user(request, "Select one key per route: which one should be pinned?", level=messages.ERROR)
            return
        for sighting in chosen:
            try:
                known = accept_host_key(actor=request.user, sighting=sighting, ip=client_ip(request))
            except ServiceError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
                continue
            self.message_user(request, f"{known.where} now pins {known.fingerprint}.", level=messages.SUCCESS)
