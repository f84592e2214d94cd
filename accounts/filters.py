import django_filters
from django.db.models import Q

from accounts.models import AuditEvent, User


class UserFilterSet(django_filters.FilterSet):
    role = django_filters.CharFilter(field_name="role_id")
    disabled = django_filters.BooleanFilter(field_name="is_active", exclude=True)
    search = django_filters.CharFilter(method="filter_search", max_length=100)

    class Meta:
        model = User
        fields = ["role", "disabled", "auth_source"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(
            Q(username__icontains=value) | Q(email__icontains=value) | Q(display_name__icontains=value)
        )


class AuditEventFilterSet(django_filters.FilterSet):
    action = django_filters.CharFilter(field_name="action")
    email = django_filters.CharFilter(field_name="user_email", lookup_expr="iexact")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "email", "since", "until"]
