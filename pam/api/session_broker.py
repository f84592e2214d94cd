"""session-broker.txt (with session-broker-v2.txt's additions), mounted at /api/.

Sections land here in the document's order as they are built: health, quick connect (an HTML
flow, in sessions.views), sessions, recordings (recordings.api), users, group-to-role mappings, address book, user API
tokens, authentication (``auth_urlpatterns`` at /auth/).
"""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from accounts import oidc
from accounts.api import views as accounts
from connections.api import views as connections
from recordings.api import views as recordings
from sessions.api import views as sessions

app_name = "session-broker"

router = SimpleRouter(trailing_slash=False)
# Sessions
router.register("sessions", sessions.SessionViewSet, basename="session")
# Users (admin only)
router.register("users", accounts.UserViewSet, basename="user")
# Group-to-role mappings (admin only)
router.register("admin/group-mappings", accounts.GroupMappingViewSet, basename="group-mapping")
# User API tokens (self-service, then admin)
router.register("me/tokens", accounts.MyTokenViewSet, basename="my-token")
router.register("admin/user-tokens", accounts.UserTokenViewSet, basename="user-token")
router.register("admin/token-audit", accounts.TokenAuditViewSet, basename="token-audit")

FOLDER = r"addressbook/folders/(?P<scope>shared|instance)/(?P<folder>[^/]+)"

urlpatterns = [
    # Health
    path("health", accounts.HealthView.as_view(), name="health"),
    # Recordings (the name is a path: YYYY/MM/DD/<session id>.cast)
    path("recordings", recordings.RecordingListView.as_view(), name="recording-list"),
    path("recordings/search", recordings.RecordingSearchView.as_view(), name="recording-search"),
    re_path(r"^recordings/(?P<name>.+\.cast)/commands$", recordings.RecordingCommandsView.as_view(), name="recording-commands"),
    re_path(r"^recordings/(?P<name>.+\.cast)/integrity$", recordings.RecordingIntegrityView.as_view(), name="recording-integrity"),
    re_path(r"^recordings/(?P<name>.+\.cast)$", recordings.RecordingView.as_view(), name="recording"),
    # Address book
    path("addressbook/folders", connections.AddressBookFolderListView.as_view(), name="addressbook-folder-list"),
    re_path(rf"^{FOLDER}$", connections.AddressBookFolderView.as_view(), name="addressbook-folder"),
    re_path(rf"^{FOLDER}/entries$", connections.AddressBookEntryListView.as_view(), name="addressbook-entry-list"),
    re_path(
        rf"^{FOLDER}/entries/(?P<entry>[^/]+)$", connections.AddressBookEntryView.as_view(), name="addressbook-entry"
    ),
    re_path(
        rf"^{FOLDER}/entries/(?P<entry>[^/]+)/connect$",
        sessions.AddressBookConnectView.as_view(),
        name="addressbook-entry-connect",
    ),
    # Authentication
    path("auth/status", accounts.AuthStatusView.as_view(), name="auth-status"),
    path("me", accounts.MeView.as_view(), name="me"),
    *router.urls,
]

# Authentication: the browser's single sign-on at /auth/ (namespace "oidc").
auth_urlpatterns = [
    path("login", oidc.LoginView.as_view(), name="login"),
    path("callback", oidc.CallbackView.as_view(), name="callback"),
    path("logout", oidc.LogoutView.as_view(), name="logout"),
]
