"""Web console pages of the connections app."""

from django.urls import path

from connections import views

app_name = "connections-console"

urlpatterns = [
    path("connections", views.index, name="index"),
]
