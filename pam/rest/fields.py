"""Serializer fields that take JSON types at their word: a string field refuses numbers, an
integer field refuses strings and floats, a boolean field takes only true and false; a nested
object stays whole in a partial update."""

from collections.abc import Mapping

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class WholeValueSerializer(serializers.Serializer):
    """A nested object (a jump host, a tunnel) that replaces the stored one whole.

    DRF passes a partial update down to nested serializers and then skips their missing
    required fields, so half an object would reach the services; here they stay required.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping) and getattr(self.root, "partial", False):
            missing = {
                field.field_name: [field.error_messages["required"]]
                for field in self._writable_fields
                if field.required and field.field_name not in data
            }
            if missing:
                raise serializers.ValidationError(missing)
        return super().to_internal_value(data)
