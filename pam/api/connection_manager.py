"""connection-manager.txt, mounted at /api/ (its paths start with /connections).

Folders are registered first so that /connections/groups… is not read as a connection id.
Beyond the document: GET /connections/tags (tag names for filtering) and
GET /connections/share-targets (users and roles for the share dialog), a connection's
tunnels: GET /connections/:id/tunnels, POST …/tunnels/start and …/tunnels/stop, and
POST /connections/:id/connect, which opens a session on it (a session-broker view).
"""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from connections.api import views
from sessions.api import views as sessions

app_name = "connection-manager"

router = SimpleRouter(trailing_slash=False)
router.register("connections/groups", views.ConnectionGroupViewSet, basename="connection-group")
router.register("connections", views.ConnectionViewSet, basename="connection")

urlpatterns = [
    *router.urls,
    # After the router, as its action was: /connections/groups/connect stays a folder's path.
    re_path(r"^connections/(?P<pk>[^/]+)/connect$", sessions.ConnectionConnectView.as_view(), name="connection-connect"),
]
