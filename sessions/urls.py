"""Browser pages of sessions (quick connect is mounted at /api/connect by pam.urls)."""

from django.urls import path

from sessions import views

app_name = "sessions-console"

urlpatterns = [
    path("client/<uuid:session_id>", views.client, name="client"),
    path("client/<uuid:session_id>/join", views.join, name="join"),
    path("sessions", views.index, name="index"),
]
