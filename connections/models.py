from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.permissions import can
from accounts.roles import Perm
from connections.choices import (
    ACTIVE_TUNNEL_STATES,
    DEFAULT_PORTS,
    HealthStatus,
    Protocol,
    Scope,
    ShareType,
    TunnelState,
)
from pam.fields import EncryptedTextField
from pam.ids import MAX_LENGTH, new_id
from targets.addresses import url_endpoint

PORT_VALIDATORS = [MinValueValidator(1), MaxValueValidator(65535)]


def new_connection_id():
    return new_id("conn")


def new_group_id():
    return new_id("grp")


def new_share_id():
    return new_id("share")


def new_hop_id():
    return new_id("hop")


class ConnectionGroupQuerySet(models.QuerySet):
    def address_book(self):
        return self.exclude(scope="")

    def address_book_visible_to(self, user):
        """Address-book folders ``user`` may see: by group membership; every folder for admins.

        A folder with no allowed groups is visible to address-book managers only.
        """
        folders = self.address_book()
        if can(user, Perm.ADDRESSBOOK_MANAGE):
            return folders
        member = ConnectionGroup.allowed_groups.through.objects.filter(
            connectiongroup_id=OuterRef("pk"), group__in=user.groups.all()
        )
        return folders.filter(Exists(member))

    def visible_to(self, user):
        """Folders in ``user``'s tree: their own and the address-book folders they may see."""
        return self.filter(
            Q(scope="", owner=user) | Q(pk__in=self.model.objects.address_book_visible_to(user).values("pk"))
        )


def address_book_folder_name_error(name):
    """Why ``name`` cannot name an address-book folder, or ''.

    session-broker: a folder name is one segment of ``scope/folder/entry`` paths, so ``.``,
    ``..`` and ``/`` would make a path mean another folder.
    """
    if name in (".", "..") or "/" in name:
        return "Folder names may not be '.' or '..', nor contain '/'."
    return ""


class ConnectionGroup(models.Model):
    """A folder of connections. With a ``scope`` it is an address-book folder (session-broker):
    top-level, named uniquely within its scope, visible to ``allowed_groups``."""

    id = models.CharField(primary_key=True, max_length=MAX_LENGTH, default=new_group_id, editable=False)
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="connection_groups",
        help_text="Empty for address-book folders, which belong to the installation.",
    )
    sort_order = models.IntegerField(default=0)
    scope = models.CharField(max_length=10, choices=Scope.choices, blank=True, default="")
    allowed_groups = models.ManyToManyField("auth.Group", blank=True, related_name="address_book_folders")
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ConnectionGroupQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "name"], condition=~Q(scope=""), name="unique_address_book_folder_name"
            ),
            models.CheckConstraint(
                condition=Q(scope="") | Q(parent__isnull=True), name="address_book_folders_are_top_level"
            ),
        ]

    def __str__(self):
        return f"{self.scope}/{self.name}" if self.scope else self.name

    @property
    def is_address_book(self):
        return bool(self.scope)

    def clean(self):
        if self.is_address_book and (error := address_book_folder_name_error(self.name)):
            raise ValidationError({"name": error})


class ConnectionQuerySet(models.QuerySet):
    def usable_by(self, user):
        """Connections ``user`` may open: their own, shared with them, their role or everyone,
        or entries of address-book folders their groups may see."""
        shared = Share.objects.filter(Q(user=user) | Q(role_id=user.role_id)).values("connection_id")
        folders = ConnectionGroup.objects.address_book_visible_to(user).values("pk")
        return self.filter(Q(owner=user) | Q(shared=True) | Q(pk__in=shared) | Q(group__in=folders))

    def visible_to(self, user):
        """Connections ``user`` may read: what they may use, and every one for editors of any."""
        if can(user, Perm.CONNECTIONS_EDIT_ANY) or can(user, Perm.CONNECTIONS_DELETE_ANY):
            return self.all()
        return self.usable_by(user)


class Connection(models.Model):
    """A target: where to connect, how, and with which (encrypted) credentials.

    One model shows through two APIs: connection-manager connections and session-broker
    address-book entries (connections inside an address-book folder).
    """

    id = models.CharField(primary_key=True, max_length=MAX_LENGTH, default=new_connection_id, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="connections",
        help_text="Empty for address-book entries, which belong to the installation.",
    )
    group = models.ForeignKey(
        ConnectionGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="connections"
    )
    name = models.CharField(max_length=200)
    display_name = models.CharField(max_length=200, blank=True)
    protocol = models.CharField(max_length=10, choices=Protocol.choices)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True, validators=PORT_VALIDATORS)
    url = models.CharField(max_length=2048, blank=True, help_text="Target URL of a web connection.")
    username = models.CharField(max_length=255, blank=True)
    password = EncryptedTextField()
    private_key = EncryptedTextField()
    autofill = EncryptedTextField(
        help_text="Web: a JSON list of {url, username, password} typed into login forms (session-broker-v2)."
    )
    shared = models.BooleanField(default=False, help_text="Usable by every user (never editable by them).")
    skip_cert_validation = models.BooleanField(default=False)
    recording_enabled = models.BooleanField(default=True)
    recording_retention_days = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Days its sessions' recordings and trails are kept; empty: PAM_RECORDING_RETENTION_DAYS.",
    )
    prompt_credentials = models.BooleanField(default=False)
    tunnels = models.JSONField(default=list, blank=True)
    extra_config = models.JSONField(default=dict, blank=True)
    sort_order = models.IntegerField(default=0)
    health_status = models.CharField(max_length=12, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN)
    health_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    health_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "name"], condition=Q(group__isnull=False), name="unique_connection_name_in_folder"
            ),
            models.UniqueConstraint(
                fields=["owner", "name"], condition=Q(group__isnull=True), name="unique_ungrouped_connection_name"
            ),
            models.CheckConstraint(
                condition=Q(port__isnull=True) | Q(port__gte=1, port__lte=65535), name="connection_port_range"
            ),
        ]

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<Connection {self.id} {self.name!r}>"

    @property
    def effective_port(self):
        return self.port or DEFAULT_PORTS[self.protocol]

    def endpoint(self):
        """Return the ``(host, port)`` PAM connects to: from the URL for web connections."""
        if self.protocol == Protocol.WEB and self.url:
            return url_endpoint(self.url)
        return self.host, self.effective_port


TAG_SEPARATOR = "\x1f"  # tag names may not contain control characters


class TagNames(models.Aggregate):
    """A connection's tag names joined by TAG_SEPARATOR (GROUP_CONCAT / STRING_AGG)."""

    function = "GROUP_CONCAT"
    template = "%(function)s(%(expressions)s, char(31))"
    output_field = models.TextField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="STRING_AGG", template="%(function)s(%(expressions)s, chr(31))")


def tag_names():
    """A subquery giving each connection row its joined tag names, for one-query listings."""
    tags = ConnectionTag.objects.filter(connection=OuterRef("pk")).order_by().values("connection")
    return Subquery(tags.annotate(names=TagNames("name")).values("names"))


class ConnectionTag(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="tag_set")
    name = models.CharField(max_length=64, db_index=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["connection", "name"], name="unique_tag_per_connection")]

    def __str__(self):
        return self.name


class JumpHop(models.Model):
    """One SSH hop on the way to a connection's target; hops are used in ``position`` order."""

    # A random id, known before the insert: the hop's credentials are sealed for it (pam.fields).
    id = models.CharField(primary_key=True, max_length=MAX_LENGTH, default=new_hop_id, editable=False)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="jump_hops")
    position = models.PositiveSmallIntegerField()
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=22, validators=PORT_VALIDATORS)
    username = models.CharField(max_length=255)
    password = EncryptedTextField()
    private_key = EncryptedTextField()

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["connection", "position"], name="unique_hop_position")]

    def __str__(self):
        return f"{self.username}@{self.host}:{self.port}"


class Share(models.Model):
    """Use of a connection granted to one user or to everyone holding a role; never edit rights."""

    id = models.CharField(primary_key=True, max_length=MAX_LENGTH, default=new_share_id, editable=False)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="connection_shares"
    )
    role = models.ForeignKey(
        "accounts.Role", null=True, blank=True, on_delete=models.CASCADE, related_name="connection_shares"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(role__isnull=True)) | (Q(user__isnull=True) & Q(role__isnull=False)),
                name="share_targets_user_or_role",
            ),
            models.UniqueConstraint(fields=["connection", "user"], name="unique_user_share"),
            models.UniqueConstraint(fields=["connection", "role"], name="unique_role_share"),
        ]

    def __str__(self):
        return f"{self.connection} -> {self.target_id}"

    @property
    def share_type(self):
        return ShareType.USER if self.user_id else ShareType.ROLE

    @property
    def target_id(self):
        return f"user_{self.user_id}" if self.user_id else f"role_{self.role_id}"


class Tunnel(models.Model):
    """The live state of one of a connection's tunnels, kept current by the worker holding it.

    One row per (connection, local port), reused from run to run. Only one active row may hold
    a local port in the whole installation (a partial unique constraint): that is what makes a
    port *taken* between connections, whichever node asks. ``node`` names the worker holding the
    tunnel, a node of the registry (nodes.Node) that beats for all it holds; a tunnel whose node
    is dead or gone is restarted elsewhere (connections.services.tunnels.reap_lost_tunnels).
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="tunnel_states")
    local_port = models.PositiveIntegerField(validators=PORT_VALIDATORS)
    remote_host = models.CharField(max_length=255)
    remote_port = models.PositiveIntegerField(validators=PORT_VALIDATORS)
    state = models.CharField(max_length=10, choices=TunnelState.choices, default=TunnelState.STOPPED, db_index=True)
    message = models.CharField(max_length=500, blank=True, help_text="Why it is down or failed; never a secret.")
    node = models.CharField(max_length=100, blank=True, help_text="The node (worker) holding the tunnel.")
    bytes_in = models.BigIntegerField(default=0, help_text="Local client to remote end.")
    bytes_out = models.BigIntegerField(default=0, help_text="Remote end to local client.")
    connections_total = models.PositiveIntegerField(default=0, help_text="Local connections forwarded.")
    connections_open = models.PositiveIntegerField(default=0)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["local_port"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "local_port"], name="unique_tunnel_port_per_connection"),
            models.UniqueConstraint(
                fields=["local_port"], condition=Q(state__in=ACTIVE_TUNNEL_STATES), name="one_active_tunnel_per_port"
            ),
        ]

    def __str__(self):
        return f"127.0.0.1:{self.local_port} -> {self.remote_host}:{self.remote_port} ({self.state})"

    @property
    def is_active(self):
        return self.state in ACTIVE_TUNNEL_STATES
