"""Serializers of the two faces of connections: connection-manager.txt (camelCase) and the
session-broker address book (snake_case). Both produce the same spec of model field names for
connections.services, through ``source=``."""

import re

from django.conf import settings
from django.core.validators import RegexValidator, URLValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from connections.choices import (
    COLOR_DEPTHS,
    ENTRY_EXTRA_KEYS,
    RDP_AUTH_PACKAGES,
    RDP_SECURITY,
    Protocol,
    Scope,
    ShareType,
    TunnelState,
)
from connections.models import ConnectionGroup
from pam.rest.fields import StrictBooleanField, StrictCharField, StrictIntegerField, WholeValueSerializer

host_validator = RegexValidator(
    r"^[A-Za-z0-9._:%\[\]-]+\Z", "Enter a host name or an IP address (letters, digits, '.', '-', ':')."
)
tag_validator = RegexValidator(r"^[^\x00-\x1f\x7f,]+\Z", "Tags may not contain commas or control characters.")
URL_VALIDATOR = URLValidator(schemes=["http", "https"])


def port_field(**kwargs):
    return StrictIntegerField(min_value=1, max_value=65535, **kwargs)


def host_field(**kwargs):
    return StrictCharField(max_length=255, validators=[host_validator], **kwargs)


def secret_field(max_length, **kwargs):
    return StrictCharField(
        max_length=max_length, required=False, allow_blank=True, allow_null=True, trim_whitespace=False,
        write_only=True, **kwargs
    )


def url_field(**kwargs):
    return StrictCharField(max_length=2048, required=False, allow_blank=True, validators=[URL_VALIDATOR], **kwargs)


@extend_schema_field(OpenApiTypes.STR)
class FolderField(serializers.Field):
    """A folder id (``grp_…``) resolved among the folders in the requesting user's tree."""

    default_error_messages = {"unknown": "Unknown folder {value!r}.", "invalid": "A folder id is a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        user = self.context["request"].user
        folder = ConnectionGroup.objects.visible_to(user).filter(pk=data).first()
        if folder is None:
            self.fail("unknown", value=data[:64])
        return folder

    def to_representation(self, value):
        return value.pk if value else None


# --- connection-manager.txt -----------------------------------------------------------------


class TunnelSerializer(WholeValueSerializer):
    localPort = port_field(source="local_port")
    remoteHost = host_field(source="remote_host")
    remotePort = port_field(source="remote_port")


class JumpHostSerializer(WholeValueSerializer):
    host = host_field()
    port = port_field(required=False)
    username = StrictCharField(max_length=255)
    password = secret_field(4096)
    privateKey = secret_field(16384, source="private_key")


class ConnectionWriteSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    displayName = StrictCharField(source="display_name", max_length=200, required=False, allow_blank=True)
    protocol = serializers.ChoiceField(choices=Protocol.choices)
    host = host_field(required=False, allow_blank=True)
    port = port_field(required=False, allow_null=True)
    url = url_field()
    username = StrictCharField(max_length=255, required=False, allow_blank=True)
    password = secret_field(4096)
    privateKey = secret_field(16384, source="private_key")
    groupId = FolderField(source="group", required=False, allow_null=True)
    tags = serializers.ListField(
        child=StrictCharField(max_length=64, validators=[tag_validator]), max_length=32, required=False
    )
    shared = StrictBooleanField(required=False)
    skipCertValidation = StrictBooleanField(source="skip_cert_validation", required=False)
    recordingEnabled = StrictBooleanField(source="recording_enabled", required=False)
    promptCredentials = StrictBooleanField(source="prompt_credentials", required=False)
    tunnels = TunnelSerializer(many=True, required=False)
    extraConfig = serializers.DictField(source="extra_config", required=False)
    jumpHosts = JumpHostSerializer(source="jump_hosts", many=True, required=False)
    sortOrder = StrictIntegerField(source="sort_order", required=False, min_value=-(10**6), max_value=10**6)


# Where the services' field names show in this document's bodies.
CONNECTION_FIELD_NAMES = {
    "private_key": "privateKey",
    "group": "groupId",
    "parent": "parentId",
    "jump_hosts": "jumpHosts",
    "extra_config": "extraConfig",
    "local_port": "localPort",
    "remote_host": "remoteHost",
    "remote_port": "remotePort",
    "autofill": "extraConfig.autofill",
}


class ImportGroupSerializer(serializers.Serializer):
    id = StrictCharField(max_length=64)
    name = StrictCharField(max_length=200)
    parentId = StrictCharField(source="parent_id", max_length=64, required=False, allow_null=True)
    sortOrder = StrictIntegerField(source="sort_order", required=False, min_value=-(10**6), max_value=10**6)


class ImportConnectionSerializer(ConnectionWriteSerializer):
    """An exported connection: its ``groupId`` refers to a group of the same file."""

    groupId = StrictCharField(source="group_ref", max_length=64, required=False, allow_null=True)


class ImportSerializer(serializers.Serializer):
    MAX_GROUPS = 10_000

    version = StrictIntegerField()
    groups = ImportGroupSerializer(many=True, required=False, max_length=MAX_GROUPS)
    connections = ImportConnectionSerializer(many=True, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Counted before any item is validated, so an oversized file costs nothing to refuse.
        self.fields["connections"].max_length = settings.IMPORT_MAX_CONNECTIONS

    def validate_version(self, value):
        if value != 1:
            raise serializers.ValidationError("Only version 1 export files can be imported.")
        return value


class ShareItemSerializer(serializers.Serializer):
    shareType = serializers.ChoiceField(source="share_type", choices=ShareType.choices)
    targetId = StrictCharField(source="target_id", max_length=254)


class SharesSerializer(serializers.Serializer):
    shares = ShareItemSerializer(many=True, max_length=1000)


class OrderItemSerializer(serializers.Serializer):
    id = StrictCharField(max_length=64)
    sortOrder = StrictIntegerField(source="sort_order", min_value=-(10**6), max_value=10**6)


class ReorderSerializer(serializers.Serializer):
    items = OrderItemSerializer(many=True, max_length=10_000)


class HealthCheckItemSerializer(serializers.Serializer):
    id = StrictCharField(max_length=64, required=False)
    host = host_field(required=False)
    port = port_field(required=False)

    def validate(self, attrs):
        # An address is checked as given, so it needs both parts, even beside an id.
        if "host" in attrs or "port" in attrs:
            complete = "host" in attrs and "port" in attrs
        else:
            complete = "id" in attrs
        if not complete:
            raise serializers.ValidationError("Give a connection id, or a host and a port.")
        return attrs


class HealthCheckSerializer(serializers.Serializer):
    checks = HealthCheckItemSerializer(many=True, min_length=1)


class FolderWriteSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    parentId = FolderField(source="parent", required=False, allow_null=True)


class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()


class TunnelStateSerializer(serializers.Serializer):
    """One tunnel and what its worker last reported (documentation of the response only)."""

    localPort = serializers.IntegerField()
    bindAddress = serializers.CharField(help_text="Always 127.0.0.1 of the worker holding the tunnel.")
    remoteHost = serializers.CharField(help_text="As the SSH target resolves it.")
    remotePort = serializers.IntegerField()
    configured = serializers.BooleanField(help_text="False for a tunnel still running after it was removed.")
    state = serializers.ChoiceField(choices=TunnelState.choices)
    message = serializers.CharField(help_text="Why it is down or failed.")
    bytesIn = serializers.IntegerField(help_text="Local clients to the remote end.")
    bytesOut = serializers.IntegerField()
    connections = serializers.IntegerField(help_text="Local connections forwarded since it started.")
    openConnections = serializers.IntegerField()
    worker = serializers.CharField(allow_null=True)
    startedBy = serializers.CharField(allow_null=True)
    startedAt = serializers.DateTimeField(allow_null=True)
    stoppedAt = serializers.DateTimeField(allow_null=True)
    updatedAt = serializers.DateTimeField(allow_null=True)


class PortRangeSerializer(serializers.Serializer):
    min = serializers.IntegerField()
    max = serializers.IntegerField()


class TunnelStatesSerializer(serializers.Serializer):
    tunnels = TunnelStateSerializer(many=True)
    portRange = PortRangeSerializer()


# --- session-broker.txt: the address book ---------------------------------------------------

SCOPE_NAME = re.compile(r"^[^/\x00-\x1f\x7f]+\Z")


class AddressBookFolderSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=Scope.choices)
    name = StrictCharField(max_length=200, validators=[RegexValidator(SCOPE_NAME, "Folder names may not contain '/'.")])
    allowed_groups = serializers.ListField(child=StrictCharField(max_length=150), max_length=100, required=False)
    description = StrictCharField(max_length=500, required=False, allow_blank=True)


class AddressBookFolderUpdateSerializer(serializers.Serializer):
    allowed_groups = serializers.ListField(child=StrictCharField(max_length=150), max_length=100, required=False)
    description = StrictCharField(max_length=500, required=False, allow_blank=True)


class EntryJumpHostSerializer(WholeValueSerializer):
    hostname = host_field(source="host")
    port = port_field(required=False)
    username = StrictCharField(max_length=255)
    password = secret_field(4096)
    private_key = secret_field(16384)


class AddressBookEntrySerializer(serializers.Serializer):
    name = StrictCharField(max_length=200, validators=[RegexValidator(SCOPE_NAME, "Entry names may not contain '/'.")])
    type = serializers.ChoiceField(source="protocol", choices=Protocol.choices)
    hostname = host_field(source="host", required=False, allow_blank=True)
    port = port_field(required=False, allow_null=True)
    username = StrictCharField(max_length=255, required=False, allow_blank=True)
    password = secret_field(4096)
    private_key = secret_field(16384)
    url = url_field()
    ignore_cert = StrictBooleanField(source="skip_cert_validation", required=False)
    display_name = StrictCharField(max_length=200, required=False, allow_blank=True)
    prompt_credentials = StrictBooleanField(required=False)
    jump_hosts = EntryJumpHostSerializer(many=True, required=False)
    # Kept in Connection.extra_config (ENTRY_EXTRA_KEYS), where connection-manager's
    # extraConfig shows them too.
    domain = StrictCharField(max_length=255, required=False, allow_blank=True)
    security = serializers.ChoiceField(choices=RDP_SECURITY, required=False)
    auth_pkg = serializers.ChoiceField(choices=RDP_AUTH_PACKAGES, required=False)
    kdc_url = StrictCharField(max_length=2048, required=False, allow_blank=True)
    color_depth = serializers.ChoiceField(choices=COLOR_DEPTHS, required=False)
    enable_drive = StrictBooleanField(required=False)
    disable_copy = StrictBooleanField(required=False)
    disable_paste = StrictBooleanField(required=False)
    # Credentials: encrypted in Connection.autofill, never shown (has_autofill says whether set).
    autofill = secret_field(8192)
    allowed_domains = serializers.ListField(
        child=StrictCharField(max_length=255, validators=[host_validator]), max_length=100, required=False
    )
    login_script = StrictCharField(
        max_length=255,
        required=False,
        allow_blank=True,
        validators=[RegexValidator(r"^[A-Za-z0-9._-]*\Z", "A login script is a file name, without any path.")],
    )

    def to_internal_value(self, data):
        spec = super().to_internal_value(data)
        extra = {name: spec.pop(name) for name in ENTRY_EXTRA_KEYS if name in spec}
        if extra:
            spec["extra_config"] = extra
        return spec


ENTRY_FIELD_NAMES = {"host": "hostname", "protocol": "type", "group": "folder"}
