from rest_framework import serializers

from connections.api.serializers import EntryJumpHostSerializer, host_field, port_field, secret_field
from pam.rest.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from sessions.choices import SessionType, ShareMode
from sessions.models import Session

# Where the services' field names show in session-broker bodies.
SESSION_FIELD_NAMES = {"host": "hostname"}


class DisplayFields(serializers.Serializer):
    width = StrictIntegerField(min_value=100, max_value=10000, required=False)
    height = StrictIntegerField(min_value=100, max_value=10000, required=False)
    dpi = StrictIntegerField(min_value=48, max_value=600, required=False)
    banner = StrictCharField(max_length=4096, required=False, allow_blank=True)


class SessionCreateSerializer(DisplayFields):
    """session-broker POST /api/sessions, with every documented field."""

    session_type = serializers.ChoiceField(choices=SessionType.choices)
    hostname = host_field(source="host", required=False, allow_blank=True)
    port = port_field(required=False, allow_null=True)
    username = StrictCharField(max_length=255, required=False, allow_blank=True)
    password = secret_field(4096)
    private_key = secret_field(16384)
    generate_keypair = StrictBooleanField(required=False)
    url = StrictCharField(max_length=2048, required=False, allow_blank=True)
    enable_drive = StrictBooleanField(required=False)
    disable_copy = StrictBooleanField(required=False)
    disable_paste = StrictBooleanField(required=False)
    share_mode = serializers.ChoiceField(choices=ShareMode.choices, required=False)
    jump_hosts = EntryJumpHostSerializer(many=True, required=False, max_length=8)
    # Legacy single jump host (jump_hosts wins when both are given).
    jump_host = host_field(required=False)
    jump_port = port_field(required=False)
    jump_username = StrictCharField(max_length=255, required=False)
    jump_password = secret_field(4096)
    jump_private_key = secret_field(16384)

    def validate(self, attrs):
        legacy = {k: attrs.pop(k) for k in list(attrs) if k.startswith("jump_") and k != "jump_hosts"}
        if "jump_hosts" not in attrs and legacy.get("jump_host"):
            if not legacy.get("jump_username"):
                raise serializers.ValidationError({"jump_username": ["A jump host needs a username."]})
            attrs["jump_hosts"] = [
                {
                    "host": legacy["jump_host"],
                    "port": legacy.get("jump_port") or 22,
                    "username": legacy["jump_username"],
                    "password": legacy.get("jump_password") or "",
                    "private_key": legacy.get("jump_private_key") or "",
                }
            ]
        for secret in ("password", "private_key"):
            if attrs.get(secret) is None:
                attrs.pop(secret, None)
        attrs.pop("url", None)  # web sessions are refused by the service until they exist
        return attrs


class ConnectSerializer(DisplayFields):
    """Connect-time overrides (never stored): session-broker address-book connect."""

    username = StrictCharField(max_length=255, required=False, allow_blank=True)
    password = secret_field(4096)
    domain = StrictCharField(max_length=255, required=False, allow_blank=True)

    def validate(self, attrs):
        attrs.pop("domain", None)  # an RDP option; terminal sessions have no domain
        if attrs.get("password") is None:
            attrs.pop("password", None)
        return attrs


SHARE_URL_HELP = (
    "The share link, `/client/<id>/join#key=<key>`: the key rides in the fragment, which browsers never "
    "send, so no access log holds it. API clients send the key in the `X-Share-Key` header instead."
)


class SessionCreatedSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    client_url = serializers.CharField()
    share_url = serializers.CharField(help_text=SHARE_URL_HELP)
    banner_text = serializers.CharField(required=False)


class SessionSerializer(serializers.ModelSerializer):
    session_id = serializers.UUIDField(source="pk", read_only=True)
    owner = serializers.EmailField(source="owner.email", read_only=True)
    connection_id = serializers.CharField(read_only=True, allow_null=True)
    hostname = serializers.CharField(source="host", read_only=True)
    client_url = serializers.SerializerMethodField()
    recording = serializers.SerializerMethodField()
    channels = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = [
            "session_id",
            "session_type",
            "owner",
            "connection_id",
            "hostname",
            "port",
            "username",
            "jump_chain",
            "status",
            "status_message",
            "share_mode",
            "client_ip",
            "node",
            "bytes_in",
            "bytes_out",
            "channels",
            "created_at",
            "started_at",
            "ended_at",
            "last_activity",
            "client_url",
            "recording",
        ]
        read_only_fields = fields

    def get_client_url(self, session) -> str:
        return f"/client/{session.pk}"

    def get_channels(self, session) -> list[dict]:
        """The trail's channels, as audited-connections shows them."""
        return [
            {
                "id": str(channel.pk),
                "type": channel.kind,
                "bytes_client_to_server": channel.bytes_in,
                "bytes_server_to_client": channel.bytes_out,
            }
            for channel in session.trail_channels.all()
        ]

    def get_recording(self, session) -> str | None:
        recording = getattr(session, "recording", None)
        return recording.name if recording else None


class BannerSerializer(serializers.Serializer):
    banner_text = serializers.CharField()
    public_key = serializers.CharField()


class ShareSerializer(serializers.Serializer):
    share_mode = serializers.ChoiceField(choices=ShareMode.choices, required=False)


class ShareLinkSerializer(serializers.Serializer):
    share_url = serializers.CharField(help_text=SHARE_URL_HELP)
    share_mode = serializers.CharField()


class DriveEntrySerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["dir", "file", "link", "other"], help_text="What it leads to.")
    link = serializers.BooleanField(help_text="The entry is a symbolic link.")
    size = serializers.IntegerField(allow_null=True)
    mode = serializers.CharField(help_text="As ls -l shows it: -rw-r--r--.")
    mtime = serializers.DateTimeField(allow_null=True)


class DriveListingSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="The directory's absolute path on the target.")
    entries = DriveEntrySerializer(many=True)
    truncated = serializers.BooleanField(help_text="Only the first 5000 entries are listed.")


class DriveUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="Its name is the name on the target.")
    path = StrictCharField(
        max_length=4096, required=False, allow_blank=True,
        help_text="Directory on the target; empty: the target user's login directory.",
    )


class DriveUploadedSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Where the file is now, on the target.")
    size = serializers.IntegerField()
