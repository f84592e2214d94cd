from rest_framework import serializers

from recordings.models import Recording


class RecordingSerializer(serializers.ModelSerializer):
    """A recording as session-broker lists it, with the session it belongs to and its index status."""

    session_id = serializers.UUIDField(read_only=True, allow_null=True)
    user = serializers.EmailField(source="session.owner.email", read_only=True, default=None)
    connection_id = serializers.CharField(source="session.connection_id", read_only=True, default=None)
    connection_name = serializers.CharField(source="session.connection.name", read_only=True, default=None)
    protocol = serializers.CharField(source="session.session_type", read_only=True, default=None)
    target = serializers.CharField(source="session.target", read_only=True, default=None)
    session_status = serializers.CharField(source="session.status", read_only=True, default=None)
    duration = serializers.FloatField(read_only=True, help_text="Seconds recorded (so far, while it is open).")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Recording
        fields = [
            "name", "session_id", "user", "connection_id", "connection_name", "protocol", "target",
            "session_status", "format", "size", "started_at", "ended_at", "duration", "digest",
            "index_status", "index_error", "indexed_at", "url",
        ]
        read_only_fields = fields

    def get_url(self, recording) -> str:
        return f"/api/recordings/{recording.name}"


class SearchHitSerializer(serializers.Serializer):
    recording = serializers.CharField(source="recording.name")
    session_id = serializers.UUIDField(source="recording.session_id", allow_null=True)
    user = serializers.EmailField(source="recording.session.owner.email", default=None)
    connection_id = serializers.CharField(source="recording.session.connection_id", default=None)
    connection_name = serializers.CharField(source="recording.session.connection.name", default=None)
    target = serializers.CharField(source="recording.session.target", default=None)
    started_at = serializers.DateTimeField(source="recording.started_at")
    at = serializers.FloatField(help_text="Seconds from the recording's start: where playback opens.")
    snippet = serializers.CharField(help_text="The line shown, trimmed around the match.")
    highlight = serializers.ListField(child=serializers.IntegerField(), help_text="[start, end) of the match in snippet.")


class SearchResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    more = serializers.BooleanField(help_text="Whether hits follow this page.")
    hits = SearchHitSerializer(many=True)


class CommandSerializer(serializers.Serializer):
    at = serializers.FloatField()
    text = serializers.CharField()


class IntegritySerializer(serializers.Serializer):
    name = serializers.CharField()
    intact = serializers.BooleanField()
    size = serializers.IntegerField()
    first_altered_offset = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField()
