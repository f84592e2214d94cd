"""Autofill values of web entries (session-broker-v2) are credentials: encrypted at rest, never shown.

They are written through either API (address-book ``autofill``, connection-manager
``extraConfig.autofill``) and read by no response, export or admin page, whatever the role.
"""

import importlib
import json

import pytest
from django.apps import apps
from django.contrib.admin.utils import quote
from django.db import connection as db
from django.urls import reverse

from connections.models import Connection
from pam import crypto
from tests.factories import make_address_book_folder, make_connection

pytestmark = pytest.mark.django_db

BASE = "/api/addressbook/folders/shared/web/entries"
SECRET = "autofill-secret-pw-71"
AUTOFILL = json.dumps([{"url": "https://app.example.com/login", "username": "svc-bot", "password": SECRET}])
WEB_ENTRY = {"name": "portal", "type": "web", "url": "https://app.example.com", "autofill": AUTOFILL}


@pytest.fixture
def folder():
    return make_address_book_folder("web", groups=["ops"])


def raw_row(pk):
    with db.cursor() as cursor:
        cursor.execute("SELECT autofill, extra_config FROM connections_connection WHERE id = %s", [pk])
        return " ".join(str(value) for value in cursor.fetchone())


def test_autofill_is_stored_encrypted_and_never_shown_to_any_role(client_as, folder):
    admin = client_as("admin")
    created = admin.post(BASE, WEB_ENTRY, format="json")
    assert created.status_code == 201 and SECRET not in created.content.decode()
    assert created.json()["has_autofill"] is True and "autofill" not in created.json()
    entry = Connection.objects.get(name="portal")
    assert entry.autofill == AUTOFILL and "autofill" not in entry.extra_config
    stored = raw_row(entry.pk)
    assert SECRET not in stored and "svc-bot" not in stored and "pam1:" in stored
    for role in ("viewer", "operator", "poweruser", "admin"):
        client = client_as(role, groups=["ops"])
        for url in (BASE, f"/api/connections/{entry.pk}", "/api/connections?all=true", "/api/connections"):
            response = client.get(url)
            assert SECRET not in response.content.decode() and "svc-bot" not in response.content.decode(), (role, url)
    assert SECRET not in admin.get("/api/connections/export").content.decode()
    page = admin.get(reverse("admin:connections_connection_change", args=[quote(entry.pk)]))
    assert page.status_code == 200 and SECRET not in page.content.decode()


def test_autofill_in_connection_manager_extra_config_is_lifted_into_the_secret(client_as):
    client = client_as("poweruser")
    body = {"name": "web", "protocol": "web", "url": "https://app.example.com", "extraConfig": {"autofill": AUTOFILL}}
    created = client.post("/api/connections", body, format="json")
    assert created.status_code == 201 and SECRET not in created.content.decode()
    connection = Connection.objects.get(pk=created.json()["id"])
    assert connection.autofill == AUTOFILL and connection.extra_config == {}
    assert created.json()["hasAutofill"] is True
    export = client.get("/api/connections/export").content.decode()
    assert SECRET not in export


def test_omitted_autofill_is_kept_and_null_clears_it(client_as, folder):
    admin = client_as("admin")
    admin.post(BASE, WEB_ENTRY, format="json")
    admin.put(f"{BASE}/portal", {"display_name": "Portal"}, format="json")
    assert Connection.objects.get(name="portal").autofill == AUTOFILL
    response = admin.put(f"{BASE}/portal", {"autofill": None}, format="json")
    assert response.json()["has_autofill"] is False and Connection.objects.get(name="portal").autofill == ""


@pytest.mark.parametrize(
    "autofill",
    ["not json", "{\"url\": \"x\"}", "[1, 2]", json.dumps([{"url": "https://a", "password": 3}])],
)
def test_autofill_that_is_not_a_json_array_of_objects_is_refused(client_as, folder, autofill):
    admin = client_as("admin")
    response = admin.post(BASE, {**WEB_ENTRY, "autofill": autofill}, format="json")
    assert response.status_code == 400 and "autofill" in response.json()["error"]
    assert not Connection.objects.filter(name="portal").exists()
    admin.post(BASE, WEB_ENTRY, format="json")
    response = admin.put(f"{BASE}/portal", {"autofill": autofill}, format="json")
    assert response.status_code == 400
    assert Connection.objects.get(name="portal").autofill == AUTOFILL


def test_migration_encrypts_plaintext_autofill_and_binds_secrets_to_their_rows(folder):
    """The data migration of an installation upgraded from plaintext autofill and field-bound
    ciphertexts."""
    entry = make_connection(None, "legacy", group=folder, protocol="web", url="https://app.example.com")
    legacy_password = crypto.encrypt("legacy-pw", "connections.Connection.password")
    config = json.dumps({"autofill": AUTOFILL, "allowed_domains": ["example.com"]})
    with db.cursor() as cursor:
        cursor.execute(
            "UPDATE connections_connection SET password = %s, extra_config = %s WHERE id = %s",
            [legacy_password, config, entry.pk],
        )
    migration = importlib.import_module("connections.migrations.0004_secrets_bound_to_rows")
    migration.forwards(apps, None)
    stored = raw_row(entry.pk)
    assert SECRET not in stored and "svc-bot" not in stored
    entry = Connection.objects.get(pk=entry.pk)
    assert entry.autofill == AUTOFILL and entry.password == "legacy-pw"
    assert entry.extra_config == {"allowed_domains": ["example.com"]}
    migration.forwards(apps, None)  # a second run changes nothing
    assert Connection.objects.get(pk=entry.pk).autofill == AUTOFILL


def test_viewer_of_an_entry_sees_only_that_autofill_is_set(client_as, folder):
    make_connection(None, "portal", group=folder, protocol="web", url="https://app.example.com", autofill=AUTOFILL)
    viewer = client_as("viewer", groups=["ops"])
    body = viewer.get(BASE).json()
    assert body[0]["has_autofill"] is True and "autofill" not in body[0]
