from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import client_ip
from accounts.roles import Perm
from connections.models import Connection, ConnectionGroup
from pam.exceptions import InvalidInput
from pam.rest.errors import renamed_fields
from pam.rest.pagination import SessionBrokerPagination
from sessions.api import serializers as s
from sessions.choices import LIVE_STATUSES
from sessions.models import Session
from sessions.services import drive, lifecycle
from sessions.services import sessions as service

# A UUID's exact shape: anything else is not a session (and must not reach a UUID lookup).
UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

DRIVE = (
    "File transfer (session-broker-v2 `enable_drive`) on a connected SSH session: SFTP, as the "
    "target user, through the session's own SSH connection and jump chain. Only the session's "
    "owner may use it (operator or higher; never share-link holders, collaborators included, nor "
    "supervisors); 403 without `enable_drive` or on a telnet session, 409 while the session is not "
    "connected, 413 beyond `PAM_DRIVE_MAX_BYTES` (default 100 MiB). Paths are the target's. "
    "Downloads and uploads are in the audit log."
)
PATH = OpenApiParameter("path", str, description="A path on the target, as its user sees it.")
# Room for the multipart envelope and the path field around an upload's bytes.
MULTIPART_SLACK = 64 * 1024


SHARE_KEY_HEADER = "X-Share-Key"


def share_url(session, share_key):
    """The session's share link, its key in the URL's fragment.

    session-broker shows ``/client/<id>&key=<key>``, which puts the key in every access log on
    the way; browsers never send a fragment, and the page it opens redeems the key by POST
    (sessions.views.join).
    """
    return f"/client/{session.pk}/join#key={share_key}"


def created_response(session, share_key):
    """session-broker: ``session_id``, ``client_url``, ``share_url`` (and an ephemeral public key)."""
    body = {
        "session_id": str(session.pk),
        "client_url": f"/client/{session.pk}",
        "share_url": share_url(session, share_key),
    }
    if session.public_key:
        body["banner_text"] = session.public_key
    return Response(body, status=status.HTTP_201_CREATED)


def _validated(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class SessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.SessionSerializer
    pagination_class = SessionBrokerPagination
    lookup_value_regex = UUID
    required_perms = {
        "list": Perm.SESSIONS_VIEW,
        "retrieve": Perm.SESSIONS_VIEW,
        "create": Perm.SESSIONS_CREATE,
        "destroy": Perm.SESSIONS_VIEW,
        "banner": None,
        "share": Perm.SESSIONS_VIEW,
        "files": Perm.SESSIONS_CONNECT,
        "files_download": Perm.SESSIONS_CONNECT,
        "files_upload": Perm.SESSIONS_CONNECT,
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Session.objects.none()
        sessions = Session.objects.visible_to(self.request.user).select_related("owner", "recording").prefetch_related("trail_channels")
        if self.action == "list" and self.request.query_params.get("live") == "true":
            sessions = sessions.filter(status__in=LIVE_STATUSES)
        return sessions

    @extend_schema(
        parameters=[OpenApiParameter("live", bool, description="Only sessions still open.")],
        description="Newest first, a page at a time: `limit` (default 200, at most 1000) and `offset`; "
        "the response is an array, with the total in the `X-Total-Count` header and the next and "
        "previous pages in `Link`.",
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.SessionCreateSerializer, responses={201: s.SessionCreatedSerializer})
    def create(self, request):
        fields = _validated(s.SessionCreateSerializer, request)
        with renamed_fields(s.SESSION_FIELD_NAMES):
            session, key = service.create_session(actor=request.user, ip=client_ip(request), **fields)
        return created_response(session, key)

    @extend_schema(responses={200: s.SessionSerializer})
    def destroy(self, request, pk=None):
        session = lifecycle.terminate_session(actor=request.user, session=self.get_object(), ip=client_ip(request))
        return Response(self.get_serializer(session).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                SHARE_KEY_HEADER, str, OpenApiParameter.HEADER, required=True,
                description="The share key of the session's share_url (never in the URL: URLs are logged).",
            )
        ],
        responses=s.BannerSerializer,
    )
    @action(detail=True, methods=["get"], authentication_classes=[])
    def banner(self, request, pk=None):
        """session-broker: the banner (and an ephemeral public key), for holders of the share key."""
        if "key" in request.query_params:
            raise InvalidInput(
                f"Send the share key in the {SHARE_KEY_HEADER} header: URLs end up in logs.", field="key"
            )
        session = Session.objects.filter(pk=pk).first()
        if session is None or not service.share_key_matches(session, request.headers.get(SHARE_KEY_HEADER, "")):
            raise NotFound()
        return Response({"banner_text": session.banner or session.public_key, "public_key": session.public_key})

    @extend_schema(request=s.ShareSerializer, responses=s.ShareLinkSerializer)
    @action(detail=True, methods=["post"])
    def share(self, request, pk=None):
        """A new share link for the session: owner only. The previous link stops working, and whoever
        is attached through it is disconnected at once."""
        session = self.get_object()
        body = _validated(s.ShareSerializer, request)
        key = service.rotate_share_key(actor=request.user, session=session, **body)
        return Response({"share_url": share_url(session, key), "share_mode": session.share_mode})

    @extend_schema(
        summary="List a directory on the session's target",
        description=DRIVE + " Without `path`, the target user's login directory.",
        parameters=[PATH],
        responses=s.DriveListingSerializer,
    )
    @action(detail=True, methods=["get"])
    def files(self, request, pk=None):
        path = request.query_params.get("path", "")
        return Response(drive.list_files(actor=request.user, session=self.get_object(), path=path))

    @extend_schema(
        summary="Download a file from the session's target",
        description=DRIVE + " The file's bytes are streamed as they arrive from the target.",
        parameters=[PATH],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="files/download")
    def files_download(self, request, pk=None):
        path = request.query_params.get("path", "")
        size, name, chunks = drive.download_file(
            actor=request.user, session=self.get_object(), path=path, ip=client_ip(request)
        )
        response = StreamingHttpResponse(chunks, content_type="application/octet-stream")
        response["Content-Length"] = str(size)
        response["Content-Disposition"] = content_disposition_header(True, name)
        return response

    @extend_schema(
        summary="Upload a file to the session's target",
        description=DRIVE + " The file keeps its name in the directory `path`, replacing a file of that "
        "name only once the new one has arrived whole.",
        request={"multipart/form-data": s.DriveUploadSerializer},
        responses={201: s.DriveUploadedSerializer},
    )
    @action(detail=True, methods=["post"], url_path="files/upload", parser_classes=[MultiPartParser])
    def files_upload(self, request, pk=None):
        session = self.get_object()
        drive.check_drive(actor=request.user, session=session)  # before reading a body it may refuse
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        drive.check_size(length - MULTIPART_SLACK)
        body = _validated(s.DriveUploadSerializer, request)
        done = drive.upload_file(actor=request.user, session=session, ip=client_ip(request), **body)
        return Response(done, status=status.HTTP_201_CREATED)


class AddressBookConnectView(APIView):
    required_perms = {"post": Perm.SESSIONS_CONNECT}

    @extend_schema(request=s.ConnectSerializer, responses={201: s.SessionCreatedSerializer})
    def post(self, request, scope, folder, entry):
        """session-broker: open a session on an address-book entry; overrides are never stored."""
        visible = ConnectionGroup.objects.address_book_visible_to(request.user)
        target = get_object_or_404(get_object_or_404(visible, scope=scope, name=folder).connections, name=entry)
        overrides = _validated(s.ConnectSerializer, request)
        with renamed_fields(s.SESSION_FIELD_NAMES):
            session, key = service.connect_connection(
                actor=request.user, connection=target, ip=client_ip(request), **overrides
            )
        return created_response(session, key)


class ConnectionConnectView(generics.GenericAPIView):
    """POST /api/connections/:id/connect, beside connection-manager's paths (pam.api.connection_manager).

    Opening a session is the session broker's business, so it lives here and connections never
    imports sessions; a connection the caller may not see is a 404, as on every other
    /api/connections/:id path.
    """

    required_perms = {"post": Perm.SESSIONS_CONNECT}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Connection.objects.none()
        return Connection.objects.visible_to(self.request.user)

    @extend_schema(request=s.ConnectSerializer, responses={201: s.SessionCreatedSerializer})
    def post(self, request, pk=None):
        """Open a session on this connection (from the console tree); overrides are never stored."""
        overrides = _validated(s.ConnectSerializer, request)
        session, key = service.connect_connection(
            actor=request.user, connection=self.get_object(), ip=client_ip(request), **overrides
        )
        return created_response(session, key)
