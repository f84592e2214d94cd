import orjson
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import client_ip
from accounts.models import Role, User
from accounts.permissions import AUTHENTICATED, can
from accounts.roles import Perm
from connections import policy
from connections.api import representations as rep
from connections.api import serializers as s
from connections.models import Connection, ConnectionGroup, ConnectionTag
from connections.services import connections as service
from connections.services import groups as folders
from connections.services import health, transfer
from connections.services import tunnels as tunnel_service
from pam.exceptions import Forbidden
from pam.rest.errors import renamed_fields

SUCCESS = {"success": True}


def _validated(serializer_class, request, **kwargs):
    serializer = serializer_class(data=request.data, context={"request": request}, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- connection-manager.txt: /api/connections -----------------------------------------------


class ConnectionViewSet(viewsets.GenericViewSet):
    lookup_value_regex = "[^/]+"
    serializer_class = s.ConnectionWriteSerializer
    required_perms = {
        "list": AUTHENTICATED,
        "create": Perm.CONNECTIONS_CREATE,
        "retrieve": AUTHENTICATED,
        "update": AUTHENTICATED,
        "destroy": AUTHENTICATED,
        "session": AUTHENTICATED,
        "shares": AUTHENTICATED,
        "health_check": AUTHENTICATED,
        "export": Perm.CONNECTIONS_IMPORT_EXPORT,
        "import_connections": Perm.CONNECTIONS_IMPORT_EXPORT,
        "reorder": AUTHENTICATED,
        "tags": AUTHENTICATED,
        "share_targets": Perm.CONNECTIONS_SHARE,
        # Tunnels: who may start or stop them is decided per connection (connections.policy).
        "tunnels": AUTHENTICATED,
        "start_tunnels": Perm.SESSIONS_CONNECT,
        "stop_tunnels": AUTHENTICATED,
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Connection.objects.none()
        return Connection.objects.visible_to(self.request.user)

    @extend_schema(
        operation_id="connections_list",
        parameters=[
            OpenApiParameter("search", str, description="Name, display name, host or tag contains this."),
            OpenApiParameter("protocol", str),
            OpenApiParameter("tag", str),
            OpenApiParameter("all", bool, description="Every connection (holders of connections.edit_any)."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def list(self, request):
        """connection-manager: the caller's tree, plus what is shared with them."""
        user = request.user
        everything = request.query_params.get("all") == "true" and can(user, Perm.CONNECTIONS_EDIT_ANY)
        groups = ConnectionGroup.objects.all() if everything else ConnectionGroup.objects.visible_to(user)
        connections = Connection.objects.all() if everything else Connection.objects.usable_by(user)
        connections = self._filter(connections, request.query_params)
        tree = {folder["id"]: folder for folder in rep.folder_summaries(groups)}
        ungrouped, shared = [], []
        for group_id, owner_id, item in rep.connection_summaries(rep.summary_rows(connections), user.pk):
            if group_id in tree:
                tree[group_id]["connections"].append(item)
            elif owner_id == user.pk and group_id is None:
                ungrouped.append(item)
            else:
                shared.append(item)
        # Ten thousand connections make a body of megabytes: orjson writes it several times
        # faster than DRF's renderer (bench/README.md).
        body = {"groups": list(tree.values()), "ungrouped": ungrouped, "sharedConnections": shared}
        return HttpResponse(orjson.dumps(body), content_type="application/json")

    @staticmethod
    def _filter(connections, params):
        if params.get("protocol"):
            connections = connections.filter(protocol=params["protocol"])
        if params.get("tag"):
            connections = connections.filter(pk__in=ConnectionTag.objects.filter(name=params["tag"]).values("connection"))
        term = params.get("search", "").strip()[:200]
        if term:
            tagged = ConnectionTag.objects.filter(name__icontains=term).values("connection")
            connections = connections.filter(
                Q(name__icontains=term) | Q(display_name__icontains=term) | Q(host__icontains=term) | Q(pk__in=tagged)
            )
        return connections

    @extend_schema(request=s.ConnectionWriteSerializer, responses={201: OpenApiTypes.OBJECT})
    def create(self, request):
        spec = _validated(s.ConnectionWriteSerializer, request)
        with renamed_fields(s.CONNECTION_FIELD_NAMES):
            connection = service.create_connection(actor=request.user, spec=spec, ip=client_ip(request))
        return Response(rep.connection_detail(connection, include_shares=True), status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def retrieve(self, request, pk=None):
        connection = self.get_object()
        return Response(rep.connection_detail(connection, include_shares=policy.can_view_shares(request.user, connection)))

    # connection-manager: PUT merges (read-modify-write); every field is optional.
    @extend_schema(request=s.ConnectionWriteSerializer(partial=True), responses=s.SuccessSerializer)
    def update(self, request, pk=None):
        connection = self.get_object()
        changes = _validated(s.ConnectionWriteSerializer, request, partial=True)
        with renamed_fields(s.CONNECTION_FIELD_NAMES):
            service.update_connection(actor=request.user, connection=connection, changes=changes, ip=client_ip(request))
        return Response(SUCCESS)

    @extend_schema(responses={200: s.SuccessSerializer})
    def destroy(self, request, pk=None):
        service.delete_connection(actor=request.user, connection=self.get_object(), ip=client_ip(request))
        return Response(SUCCESS)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def session(self, request, pk=None):
        """connection-manager: decrypted credentials, for the owner and the reveal permission."""
        credentials = service.reveal_credentials(actor=request.user, connection=self.get_object(), ip=client_ip(request))
        return Response(credentials)

    @extend_schema(responses=s.TunnelStatesSerializer)
    @action(detail=True, methods=["get"])
    def tunnels(self, request, pk=None):
        """The connection's tunnels and their state as their worker last reported it."""
        return Response(rep.tunnel_states(self.get_object(), tunnel_service.port_range()))

    @extend_schema(
        request=None,
        responses={202: s.TunnelStatesSerializer},
        description=(
            "Open the connection's tunnels on a worker, each on 127.0.0.1:localPort of that worker. "
            "Needs sessions.connect and the use of the connection. A localPort outside the configured "
            "range, or taken (by another connection's tunnel or anything listening), is a 400."
        ),
    )
    @action(detail=True, methods=["post"], url_path="tunnels/start")
    def start_tunnels(self, request, pk=None):
        connection = self.get_object()
        with renamed_fields(s.CONNECTION_FIELD_NAMES):
            tunnel_service.start_tunnels(actor=request.user, connection=connection, ip=client_ip(request))
        return Response(rep.tunnel_states(connection, tunnel_service.port_range()), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={202: s.TunnelStatesSerializer},
        description="Close the connection's tunnels; their worker does it within a second or two.",
    )
    @action(detail=True, methods=["post"], url_path="tunnels/stop")
    def stop_tunnels(self, request, pk=None):
        connection = self.get_object()
        tunnel_service.stop_tunnels(actor=request.user, connection=connection, ip=client_ip(request))
        return Response(rep.tunnel_states(connection, tunnel_service.port_range()), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.SharesSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get", "put"])
    def shares(self, request, pk=None):
        connection = self.get_object()
        if request.method == "GET":
            if not policy.can_view_shares(request.user, connection):
                raise Forbidden("Only the owner and editors of any connection see its shares.")
            return Response({"shares": [rep.share_item(x) for x in connection.shares.select_related("user")]})
        body = _validated(s.SharesSerializer, request)
        service.set_shares(actor=request.user, connection=connection, shares=body["shares"], ip=client_ip(request))
        return Response(SUCCESS)

    @extend_schema(request=s.HealthCheckSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["post"], url_path="health-check")
    def health_check(self, request):
        checks = _validated(s.HealthCheckSerializer, request)["checks"]
        results = health.check_for(actor=request.user, checks=checks)
        return Response({"results": results})

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"])
    def export(self, request):
        groups, connections = transfer.export_connections(actor=request.user, ip=client_ip(request))
        now = timezone.now()
        response = JsonResponse(rep.export_document(groups, connections, now), json_dumps_params={"indent": 1})
        response["Content-Disposition"] = f'attachment; filename="pam-connections-{now:%Y%m%d-%H%M%S}.json"'
        return response

    @extend_schema(request=s.ImportSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["post"], url_path="import")
    def import_connections(self, request):
        document = _validated(s.ImportSerializer, request)
        with renamed_fields(s.CONNECTION_FIELD_NAMES):
            result = transfer.import_connections(
                actor=request.user,
                groups=document.get("groups", []),
                connections=document.get("connections", []),
                ip=client_ip(request),
            )
        return Response(result, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ReorderSerializer, responses=s.SuccessSerializer)
    @action(detail=False, methods=["put"])
    def reorder(self, request):
        items = _validated(s.ReorderSerializer, request)["items"]
        service.reorder(actor=request.user, model=Connection, items=items, allowed=policy.can_edit)
        return Response(SUCCESS)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def tags(self, request):
        """Every tag on a connection the caller may use, for filtering the tree."""
        usable = Connection.objects.usable_by(request.user).values("pk")
        names = ConnectionTag.objects.filter(connection__in=usable).values_list("name", flat=True).distinct()
        return Response({"tags": sorted(names)})

    @extend_schema(
        parameters=[OpenApiParameter("search", str, description="Name or email contains this.")],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"], url_path="share-targets")
    def share_targets(self, request):
        """Users and roles a connection can be shared with (for the share dialog)."""
        term = request.query_params.get("search", "").strip()[:100]
        users = User.objects.filter(is_active=True).exclude(pk=request.user.pk)
        if term:
            users = users.filter(Q(email__icontains=term) | Q(display_name__icontains=term) | Q(username__icontains=term))
        return Response(
            {
                "users": [
                    {"targetId": f"user_{u.pk}", "name": u.get_full_name(), "email": u.email} for u in users[:50]
                ],
                "roles": [{"targetId": f"role_{r.pk}", "name": r.pk} for r in Role.objects.all()],
            }
        )


class ConnectionGroupViewSet(viewsets.GenericViewSet):
    lookup_value_regex = "[^/]+"
    serializer_class = s.FolderWriteSerializer
    required_perms = {
        "create": Perm.CONNECTIONS_CREATE,
        "update": AUTHENTICATED,
        "destroy": AUTHENTICATED,
        "reorder": AUTHENTICATED,
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ConnectionGroup.objects.none()
        return ConnectionGroup.objects.visible_to(self.request.user)

    @extend_schema(request=s.FolderWriteSerializer, responses={201: OpenApiTypes.OBJECT})
    def create(self, request):
        body = _validated(s.FolderWriteSerializer, request)
        with renamed_fields(s.CONNECTION_FIELD_NAMES):
            folder = folders.create_folder(
                actor=request.user, name=body["name"], parent=body.get("parent"), ip=client_ip(request)
            )
        return Response(rep.folder_summary(folder), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.FolderWriteSerializer, responses=s.SuccessSerializer)
    def update(self, request, pk=None):
        folder = self.get_object()
        changes = _validated(s.FolderWriteSerializer, request, partial=True)
        with renamed_fields(s.CONNECTION_FIELD_NAMES):
            folders.update_folder(actor=request.user, folder=folder, changes=changes, ip=client_ip(request))
        return Response(SUCCESS)

    @extend_schema(responses={200: s.SuccessSerializer})
    def destroy(self, request, pk=None):
        folders.delete_folder(actor=request.user, folder=self.get_object(), ip=client_ip(request))
        return Response(SUCCESS)

    @extend_schema(request=s.ReorderSerializer, responses=s.SuccessSerializer)
    @action(detail=False, methods=["put"])
    def reorder(self, request):
        items = _validated(s.ReorderSerializer, request)["items"]
        service.reorder(actor=request.user, model=ConnectionGroup, items=items, allowed=policy.can_edit_folder)
        return Response(SUCCESS)


# --- session-broker.txt: /api/addressbook ---------------------------------------------------


def _folder(request, scope, folder):
    """An address-book folder the caller may see, or 404."""
    visible = ConnectionGroup.objects.address_book_visible_to(request.user)
    return get_object_or_404(visible.prefetch_related("allowed_groups"), scope=scope, name=folder)


def _entry(folder, entry):
    return get_object_or_404(folder.connections.prefetch_related("jump_hops"), name=entry)


class AddressBookFolderListView(APIView):
    required_perms = {"get": Perm.ADDRESSBOOK_VIEW, "post": Perm.ADDRESSBOOK_MANAGE}

    @extend_schema(responses={200: list[dict]})
    def get(self, request):
        """Folders visible to the caller's groups (every folder for address-book managers)."""
        visible = ConnectionGroup.objects.address_book_visible_to(request.user).prefetch_related("allowed_groups")
        return Response([rep.address_book_folder(f) for f in visible.order_by("scope", "name")])

    @extend_schema(request=s.AddressBookFolderSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        body = _validated(s.AddressBookFolderSerializer, request)
        folder = folders.create_address_book_folder(actor=request.user, ip=client_ip(request), **body)
        return Response(rep.address_book_folder(folder), status=status.HTTP_201_CREATED)


class AddressBookFolderView(APIView):
    required_perms = {"put": Perm.ADDRESSBOOK_MANAGE, "delete": Perm.ADDRESSBOOK_MANAGE}

    @extend_schema(request=s.AddressBookFolderUpdateSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request, scope, folder):
        target = _folder(request, scope, folder)
        changes = _validated(s.AddressBookFolderUpdateSerializer, request)
        target = folders.update_address_book_folder(actor=request.user, folder=target, changes=changes, ip=client_ip(request))
        return Response(rep.address_book_folder(target))

    @extend_schema(responses={204: None})
    def delete(self, request, scope, folder):
        folders.delete_folder(actor=request.user, folder=_folder(request, scope, folder), ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AddressBookEntryListView(APIView):
    required_perms = {"get": Perm.ADDRESSBOOK_VIEW, "post": Perm.ADDRESSBOOK_MANAGE}

    @extend_schema(responses={200: list[dict]})
    def get(self, request, scope, folder):
        target = _folder(request, scope, folder)
        entries = target.connections.prefetch_related("jump_hops").order_by("sort_order", "name")
        return Response([rep.address_book_entry(e) for e in entries])

    @extend_schema(request=s.AddressBookEntrySerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request, scope, folder):
        target = _folder(request, scope, folder)
        spec = _validated(s.AddressBookEntrySerializer, request)
        with renamed_fields(s.ENTRY_FIELD_NAMES):
            entry = service.create_connection(actor=request.user, spec={**spec, "group": target}, ip=client_ip(request))
        return Response(rep.address_book_entry(entry), status=status.HTTP_201_CREATED)


class AddressBookEntryView(APIView):
    required_perms = {"put": Perm.ADDRESSBOOK_MANAGE, "delete": Perm.ADDRESSBOOK_MANAGE}

    @extend_schema(request=s.AddressBookEntrySerializer(partial=True), responses=OpenApiTypes.OBJECT)
    def put(self, request, scope, folder, entry):
        """session-broker: read-modify-write; omitted credentials and hop credentials are kept."""
        target = _entry(_folder(request, scope, folder), entry)
        changes = _validated(s.AddressBookEntrySerializer, request, partial=True)
        if "extra_config" in changes:
            changes["extra_config"] = {**target.extra_config, **changes["extra_config"]}
        with renamed_fields(s.ENTRY_FIELD_NAMES):
            target = service.update_connection(actor=request.user, connection=target, changes=changes, ip=client_ip(request))
        target.refresh_from_db()
        return Response(rep.address_book_entry(target))

    @extend_schema(responses={204: None})
    def delete(self, request, scope, folder, entry):
        target = _entry(_folder(request, scope, folder), entry)
        service.delete_connection(actor=request.user, connection=target, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
