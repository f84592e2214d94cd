from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from pam.api.session_broker import auth_urlpatterns
from sessions.views import quick_connect

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/connect", quick_connect, name="quick-connect"),
    path("api/", include("pam.api.connection_manager")),
    path("api/", include("pam.api.session_broker")),
    path("connection-manager/api/v1/", include("pam.api.audited_connections")),
    path("auth/", include((auth_urlpatterns, "oidc"))),
    path("admin/", admin.site.urls),
    path("favicon.ico", RedirectView.as_view(url=static("console/favicon.svg"), permanent=True)),
    path("", include("accounts.urls")),
    path("", include("connections.urls")),
    path("", include("sessions.urls")),
    path("", include("recordings.urls")),
]

handler400 = "pam.rest.errors.bad_request"
handler403 = "pam.rest.errors.permission_denied"
handler404 = "pam.rest.errors.page_not_found"
handler500 = "pam.rest.errors.server_error"
