"""audited-connections.txt, mounted at /connection-manager/api/v1/ (recordings.api.audited).

Fixed words (``connections/search``, ``connections/tags``, ``connections/access_roles/…``) come
before ``connections/{id}``, which is a UUID.
"""

from django.urls import path

from recordings.api import audited as views

app_name = "audited-connections"

CONNECTION = "connections/<str:connection_id>"
CHANNEL = f"{CONNECTION}/channel/<str:channel_id>"

urlpatterns = [
    path("connections", views.AuditedConnectionListView.as_view(), name="connection-list"),
    path("connections/search", views.AuditedConnectionSearchView.as_view(), name="connection-search"),
    path("connections/tags", views.TagListView.as_view(), name="tag-list"),
    path("connections/access_roles/<str:role_id>", views.AccessRoleEverywhereView.as_view(), name="access-role-everywhere"),
    path(CONNECTION, views.AuditedConnectionView.as_view(), name="connection"),
    path(f"{CHANNEL}/file/<str:file_id>", views.FileTicketView.as_view(), name="file-ticket"),
    path(f"{CHANNEL}/file/<str:file_id>/<str:ticket>", views.FileDownloadView.as_view(), name="file-download"),
    path(f"{CHANNEL}/log", views.LogTicketView.as_view(), name="log-ticket"),
    path(f"{CHANNEL}/log/<str:ticket>", views.LogDownloadView.as_view(), name="log-download"),
    path(f"{CONNECTION}/access_roles", views.AccessRolesView.as_view(), name="access-roles"),
    path(f"{CONNECTION}/access_roles/<str:role_id>", views.AccessRoleView.as_view(), name="access-role"),
    path(f"{CONNECTION}/tags", views.TagsView.as_view(), name="tags"),
    path(f"{CONNECTION}/disconnect", views.DisconnectView.as_view(), name="disconnect"),
]
