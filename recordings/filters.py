from datetime import UTC

import django_filters
from django import forms
from django.db.models import Q

from recordings.models import Recording, RecordingChunk
from recordings.search import MIN_QUERY


def in_utc(moment):
    """``moment`` (aware) in UTC: PostgreSQL takes offsets up to 15:59 only, and the OpenAPI
    date-time format allows any. A moment UTC cannot hold (year 0) is a ValueError."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("The date is out of range.") from None


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return in_utc(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class RecordingFilter(django_filters.FilterSet):
    """The console's and the API's filters on recordings: who, what, when, how it stands."""

    user = django_filters.CharFilter(method="by_user", help_text="The session owner's email (or user id).")
    connection = django_filters.CharFilter(field_name="session__connection_id", help_text="A saved connection's id.")
    protocol = django_filters.CharFilter(field_name="session__session_type")
    status = django_filters.CharFilter(field_name="session__status", help_text="The session's status.")
    index_status = django_filters.CharFilter(field_name="index_status")
    since = UtcDateTimeFilter(field_name="started_at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="started_at", lookup_expr="lte")
    q = django_filters.CharFilter(
        method="by_text",
        help_text="Words in the target, user or connection name, or (3 characters or more) in the recorded text.",
    )

    class Meta:
        model = Recording
        fields = []

    def by_user(self, queryset, name, value):
        match = Q(session__owner__email__iexact=value)
        if value.isascii() and value.isdigit() and len(value) <= 18:  # "²".isdigit() is true
            match |= Q(session__owner_id=int(value))
        return queryset.filter(match)

    def by_text(self, queryset, name, value):
        value = value.strip()
        attributes = (
            Q(session__host__icontains=value) | Q(session__username__icontains=value)
            | Q(session__owner__email__icontains=value) | Q(session__connection__name__icontains=value)
            | Q(name__icontains=value)
        )
        if len(value) >= MIN_QUERY:
            attributes |= Q(pk__in=RecordingChunk.objects.filter(text__contains_text=value).values("recording_id"))
        return queryset.filter(attributes)
