"""Django admin for connections: every model listed and searchable, credentials never shown."""

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from connections.models import Connection, JumpHop, Share
from tests.factories import make_address_book_folder, make_connection, make_folder, make_user

pytestmark = pytest.mark.django_db

MODELS = ["connection", "connectiongroup", "share", "jumphop", "connectiontag", "tunnel"]


@pytest.fixture
def admin_browser():
    client = Client()
    client.force_login(make_user("admin"))
    return client


@pytest.fixture
def secret_connection(ssh_key):
    owner = make_user("poweruser")
    conn = make_connection(owner, "db", group=make_folder(owner), password="pw-in-admin", private_key=ssh_key, tags=["t"])
    JumpHop.objects.create(connection=conn, position=0, host="10.0.0.5", username="j", password="hop-in-admin")
    Share.objects.create(connection=conn, role_id="operator")
    make_address_book_folder("prod", groups=["ops"])
    return conn


@pytest.mark.parametrize("model", MODELS)
def test_changelists_open_and_search(admin_browser, secret_connection, model):
    response = admin_browser.get(reverse(f"admin:connections_{model}_changelist"), {"q": "d"})
    assert response.status_code == 200 and 'id="searchbar"' in response.content.decode()


def test_change_page_never_shows_credentials(admin_browser, secret_connection, ssh_key):
    html = admin_browser.get(reverse("admin:connections_connection_change", args=[quote(secret_connection.pk)])).content.decode()
    for secret in ("pw-in-admin", "hop-in-admin", ssh_key.splitlines()[1]):
        assert secret not in html
    assert "Write-only" in html


def _form(conn, **changes):
    data = {
        "name": conn.name, "display_name": "", "protocol": conn.protocol, "owner": conn.owner_id, "group": conn.group_id or "",
        "sort_order": 0, "host": conn.host, "port": "", "url": "", "username": "", "password": "", "private_key": "",
        "tunnels": "[]", "extra_config": "{}", "recording_enabled": "on",
        "tag_set-TOTAL_FORMS": 0, "tag_set-INITIAL_FORMS": 0,
        "jump_hops-TOTAL_FORMS": 0, "jump_hops-INITIAL_FORMS": 0,
        "shares-TOTAL_FORMS": 0, "shares-INITIAL_FORMS": 0,
    }
    data.update(changes)
    return data


def test_blank_secret_keeps_the_stored_one(admin_browser):
    conn = make_connection(make_user("poweruser"), "keep", password="stored-pw")
    url = reverse("admin:connections_connection_change", args=[quote(conn.pk)])
    response = admin_browser.post(url, _form(conn, username="renamed"))
    assert response.status_code == 302, response.content.decode()[:3000]
    conn.refresh_from_db()
    assert (conn.username, conn.password) == ("renamed", "stored-pw")
    assert AuditEvent.objects.filter(action="connection.updated", object_name__contains=conn.pk).exists()
    admin_browser.post(url, _form(conn, password="typed-pw"))
    assert Connection.objects.get(pk=conn.pk).password == "typed-pw"


@pytest.mark.parametrize("change", [{"private_key": "not a key"}, {"host": "0xa9fea9fe"}])
def test_admin_form_applies_the_api_checks(admin_browser, change):
    conn = make_connection(make_user("poweruser"), "checked")
    response = admin_browser.post(reverse("admin:connections_connection_change", args=[quote(conn.pk)]), _form(conn, **change))
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert Connection.objects.get(pk=conn.pk).host == "127.0.0.1" and not Connection.objects.get(pk=conn.pk).private_key


def test_operator_cannot_open_connection_admin():
    client = Client()
    client.force_login(make_user("operator"))
    assert client.get(reverse("admin:connections_connection_changelist")).status_code == 302
