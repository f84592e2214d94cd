"""Console pages of recordings."""

from django.urls import re_path

from recordings import views

app_name = "recordings-console"

urlpatterns = [
    re_path(r"^recordings$", views.index, name="index"),
    re_path(r"^recordings/(?P<name>.+\.cast)$", views.play, name="play"),
]
