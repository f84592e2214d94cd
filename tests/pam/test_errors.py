"""Every API error is JSON: DRF's, Django's own 404/405/400/CSRF, never an HTML page."""

import pytest
from django.test import Client

from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/nope", "/api/users/x/unknown", "/connection-manager/api/v1/nope"])
def test_unknown_api_path_is_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "Not found."}


def test_unknown_console_path_is_html_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and "text/html" in response["Content-Type"]


def test_wrong_method_is_json_405(admin_client):
    response = admin_client.patch("/api/users", {}, format="json")
    assert response.status_code == 405
    assert response.json() == {"error": 'Method "PATCH" not allowed.'}


def test_unsupported_media_type_is_json_415(admin_client):
    response = admin_client.post("/api/me/tokens", "name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and "Unsupported media type" in response.json()["error"]


def test_oversized_body_is_json_400(admin_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = admin_client.post("/api/me/tokens", {"name": "x" * 5000}, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": "Bad request."}


def test_csrf_failure_on_api_is_json_403():
    user = make_user("poweruser")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/me/tokens", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_validation_error_names_the_field(client_as):
    response = client_as("poweruser").post("/api/me/tokens", {"name": ""}, format="json")
    body = response.json()
    assert response.status_code == 400
    assert body["error"].startswith("name:") and "name" in body["fields"]
