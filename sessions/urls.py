"""Browser pages of sessions (quick connect is mounted at /api/connect by pam.urls)."""

from django.urls import path, re_path

from sessions import views

app_name = "sessions-console"

urlpatterns = [
    path("client/<uuid:session_id>", views.client, name="client"),
    re_path(r"^client/(?P<session_id>[0-9a-fA-F-]{36})&key=(?P<key>[^/?]+)$", views.client_share_link),
    path("sessions", views.index, name="index"),
]
