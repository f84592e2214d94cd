"""Web console pages of the identity app, plus the console's home page."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html",
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("tokens", views.tokens, name="tokens"),
    path("users", views.users, name="users"),
    path("audit", views.audit, name="audit"),
]
