"""session-broker quick connect (GET /api/connect, an HTML flow for browsers) and the /client page.

A GET never opens a session behind the user's back: it shows a confirmation or the inline
credential form, whose POST (with CSRF) opens the session, unless the link comes from a
trusted origin and nothing needs to be asked.
"""

import json
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from connections.models import Connection
from sessions.models import Session
from sessions.services.sessions import route_for, share_digest
from tests.factories import make_address_book_folder, make_connection, make_user

pytestmark = pytest.mark.django_db

NETBOX = "https://netbox.example"
BOOK = {"scope": "shared", "folder": "prod", "entry": "web-01"}
AD_HOC = {"hostname": "10.0.1.50", "protocol": "ssh"}


def browser(role="operator", groups=(), csrf=False):
    client = Client(enforce_csrf_checks=csrf)
    client.user = make_user(role, groups=groups)
    client.force_login(client.user)
    return client


def connect_url(**params):
    return "/api/connect?" + urlencode(params)


class FormReader(HTMLParser):
    """The connect form's inputs (name → value), hidden or not."""

    def __init__(self):
        super().__init__()
        self.in_form = False
        self.fields = {}
        self.found = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("data-testid") == "connect-form":
            self.in_form = self.found = True
        elif tag == "input" and self.in_form and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False


def form_of(response):
    reader = FormReader()
    reader.feed(response.content.decode())
    assert reader.found, "no connect form on the page"
    return reader.fields


@pytest.fixture
def book():
    folder = make_address_book_folder("prod", groups=["ops"])
    entry = make_connection(None, "web-01", group=folder, host="10.0.0.5", username="deploy", password="stored-pw")
    return entry


@pytest.fixture
def trusted(settings):
    settings.CONNECT_TRUSTED_ORIGINS = [NETBOX]


# --- signing in first ------------------------------------------------------------------------


def test_anonymous_is_sent_to_login_with_the_full_link(client):
    url = connect_url(**AD_HOC, port=2222, username="root")
    response = client.get(url)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [url]
    assert Session.objects.count() == 0


def test_anonymous_goes_through_single_sign_on_when_configured(client, settings):
    settings.OIDC_ENABLED = True
    url = connect_url(**BOOK)
    response = client.get(url)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/auth/login"
    assert parse_qs(location.query)["next"] == [url]


def test_anonymous_post_opens_nothing(client, book):
    response = client.post("/api/connect", {**BOOK, "password": "pw"})
    assert response.status_code == 302 and Session.objects.count() == 0


# --- a GET asks first ------------------------------------------------------------------------


def test_address_book_get_shows_a_confirmation_and_opens_nothing(book):
    response = browser(groups=["ops"]).get(connect_url(**BOOK))
    assert response.status_code == 200
    fields = form_of(response)
    assert {k: fields[k] for k in BOOK} == BOOK
    assert "password" not in fields  # stored credentials: nothing to ask
    assert "10.0.0.5" in response.content.decode()
    assert Session.objects.count() == 0


def test_ad_hoc_get_shows_the_credential_form_and_opens_nothing(settings):
    response = browser("poweruser").get(connect_url(**AD_HOC, username="root"))
    assert response.status_code == 200
    fields = form_of(response)
    assert fields["hostname"] == "10.0.1.50" and fields["protocol"] == "ssh"
    assert fields["username"] == "root" and fields["password"] == ""
    assert Session.objects.count() == 0


@pytest.mark.parametrize("entry_fields", [{"prompt_credentials": True}, {"password": ""}])
def test_entry_needing_credentials_shows_the_credential_form(book, entry_fields):
    Connection.objects.filter(pk=book.pk).update(**entry_fields)
    response = browser(groups=["ops"]).get(connect_url(**BOOK))
    assert response.status_code == 200
    fields = form_of(response)
    assert "password" in fields and fields["username"] == "deploy"
    assert "never stored" in response.content.decode()
    assert Session.objects.count() == 0


def test_get_from_an_untrusted_origin_opens_nothing(book, trusted):
    response = browser(groups=["ops"]).get(connect_url(**BOOK), HTTP_REFERER="https://evil.example/netbox.example")
    assert response.status_code == 200 and Session.objects.count() == 0


def test_get_from_a_trusted_origin_opens_the_session_at_once(book, trusted):
    client = browser(groups=["ops"])
    response = client.get(connect_url(**BOOK, width=1280, height=720), HTTP_REFERER=f"{NETBOX}/dcim/devices/7/")
    session = Session.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/client/{session.pk}"
    assert session.owner == client.user and session.connection == book
    assert (session.width, session.height) == (1280, 720)


def test_trusted_origin_header_counts_too(book, trusted):
    response = browser(groups=["ops"]).get(connect_url(**BOOK), HTTP_ORIGIN=NETBOX)
    assert response.status_code == 302 and Session.objects.count() == 1


def test_an_untrusted_origin_header_wins_over_a_trusted_referer(book, trusted):
    response = browser(groups=["ops"]).get(
        connect_url(**BOOK), HTTP_ORIGIN="https://evil.example", HTTP_REFERER=f"{NETBOX}/"
    )
    assert response.status_code == 200 and Session.objects.count() == 0


def test_no_origin_is_trusted_unless_configured(book):
    response = browser(groups=["ops"]).get(connect_url(**BOOK), HTTP_REFERER=f"{NETBOX}/")
    assert response.status_code == 200 and Session.objects.count() == 0


def test_trusted_origin_still_asks_for_credentials_an_entry_needs(book, trusted):
    Connection.objects.filter(pk=book.pk).update(prompt_credentials=True)
    response = browser(groups=["ops"]).get(connect_url(**BOOK), HTTP_REFERER=f"{NETBOX}/")
    assert response.status_code == 200 and "password" in form_of(response)
    assert Session.objects.count() == 0


def test_trusted_origin_still_asks_for_ad_hoc_credentials(trusted):
    response = browser("poweruser").get(connect_url(**AD_HOC), HTTP_REFERER=f"{NETBOX}/")
    assert response.status_code == 200 and "password" in form_of(response)
    assert Session.objects.count() == 0


def test_a_password_in_the_link_is_never_used(book, trusted):
    Connection.objects.filter(pk=book.pk).update(password="")
    response = browser(groups=["ops"]).get(connect_url(**BOOK, password="from-the-url"), HTTP_REFERER=f"{NETBOX}/")
    assert response.status_code == 200 and Session.objects.count() == 0
    assert "from-the-url" not in response.content.decode()


def test_a_password_in_a_trusted_link_is_not_used_for_a_stored_entry(book, trusted):
    browser(groups=["ops"]).get(connect_url(**BOOK, password="from-the-url"), HTTP_REFERER=f"{NETBOX}/")
    assert route_for(Session.objects.get()).target.password == "stored-pw"


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("poweruser", 200), ("admin", 200)])
def test_ad_hoc_mode_needs_poweruser(role, status):
    response = browser(role).get(connect_url(**AD_HOC))
    assert response.status_code == status
    if status == 403:
        assert "poweruser" in response.content.decode()
        assert b"connect-form" not in response.content


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 200), ("poweruser", 200), ("admin", 200)])
def test_address_book_mode_needs_operator(book, role, status):
    assert browser(role, groups=["ops"]).get(connect_url(**BOOK)).status_code == status


def test_operator_post_in_ad_hoc_mode_is_refused(book):
    client = browser("operator", csrf=False)
    response = client.post("/api/connect", {**AD_HOC, "username": "root", "password": "pw"})
    assert response.status_code == 403 and Session.objects.count() == 0


def test_entry_outside_the_users_groups_is_not_found(book):
    response = browser(groups=["others"]).get(connect_url(**BOOK))
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
    assert 'role="alert"' in response.content.decode()
    assert b"connect-form" not in response.content and Session.objects.count() == 0


@pytest.mark.parametrize("params", [{**BOOK, "entry": "nope"}, {**BOOK, "folder": "nope"}, {**BOOK, "scope": "instance"}])
def test_unknown_entry_is_not_found(book, params):
    assert browser(groups=["ops"]).get(connect_url(**params)).status_code == 404


# --- the POST opens the session --------------------------------------------------------------


def test_confirmation_post_opens_the_address_book_session(book):
    client = browser(groups=["ops"], csrf=True)
    fields = form_of(client.get(connect_url(**BOOK, dpi=120)))
    response = client.post("/api/connect", fields)
    session = Session.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/client/{session.pk}"
    assert session.owner == client.user and session.connection == book and session.dpi == 120
    assert route_for(session).target.password == "stored-pw"


def test_a_links_other_username_is_never_given_the_stored_password(book):
    client = browser(groups=["ops"], csrf=True)
    fields = form_of(client.get(connect_url(**BOOK, username="jdoe")))
    assert "password" in fields and fields["username"] == "jdoe"  # the credential form, not a confirmation
    response = client.post("/api/connect", fields)
    assert response.status_code == 400 and Session.objects.count() == 0
    client.post("/api/connect", {**fields, "password": "typed-jdoe-pw"})
    session = Session.objects.get()
    assert session.username == "jdoe" and route_for(session).target.password == "typed-jdoe-pw"


def test_post_without_csrf_token_is_refused(book):
    client = browser(groups=["ops"], csrf=True)
    fields = form_of(client.get(connect_url(**BOOK)))
    fields.pop("csrfmiddlewaretoken")
    assert client.post("/api/connect", fields).status_code == 403
    assert Session.objects.count() == 0


def test_credential_form_post_opens_the_session_with_the_typed_password(book):
    Connection.objects.filter(pk=book.pk).update(prompt_credentials=True)
    client = browser(groups=["ops"], csrf=True)
    fields = form_of(client.get(connect_url(**BOOK)))
    response = client.post("/api/connect", {**fields, "username": "jdoe", "password": "typed-pw-987"})
    session = Session.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/client/{session.pk}"
    assert "typed-pw-987" not in response["Location"] and "typed-pw-987" not in response.content.decode()
    assert session.username == "jdoe" and route_for(session).target.password == "typed-pw-987"
    entry = Connection.objects.get(pk=book.pk)
    assert entry.username == "deploy" and entry.password == "stored-pw"


def test_credential_form_offers_the_links_username(book):
    Connection.objects.filter(pk=book.pk).update(prompt_credentials=True)
    fields = form_of(browser(groups=["ops"]).get(connect_url(**BOOK, username="jdoe")))
    assert fields["username"] == "jdoe"


def test_credential_form_post_without_a_password_asks_again(book):
    Connection.objects.filter(pk=book.pk).update(password="")
    client = browser(groups=["ops"], csrf=True)
    fields = form_of(client.get(connect_url(**BOOK)))
    response = client.post("/api/connect", fields)
    assert response.status_code == 400 and "password" in form_of(response)
    assert Session.objects.count() == 0


def test_ad_hoc_form_post_opens_the_session(settings):
    client = browser("poweruser", csrf=True)
    fields = form_of(client.get(connect_url(**AD_HOC, port=2222)))
    response = client.post("/api/connect", {**fields, "username": "root", "password": "typed-pw-654"})
    session = Session.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/client/{session.pk}"
    assert (session.host, session.port, session.username, session.connection) == ("10.0.1.50", 2222, "root", None)
    assert route_for(session).target.password == "typed-pw-654"
    assert "typed-pw-654" not in response["Location"]


def test_refused_post_does_not_echo_the_password(settings):
    client = browser("poweruser", csrf=True)
    fields = form_of(client.get(connect_url(hostname="169.254.169.254")))
    response = client.post("/api/connect", {**fields, "username": "root", "password": "typed-pw-321"})
    assert response.status_code == 400
    assert "typed-pw-321" not in response.content.decode()
    assert "deny list" in response.content.decode()
    assert Session.objects.count() == 0


@pytest.mark.parametrize("protocol", ["rdp", "vnc", "web"])
def test_ad_hoc_graphical_protocols_are_refused(protocol):
    client = browser("poweruser")
    response = client.post("/api/connect", {"hostname": "10.0.1.50", "protocol": protocol, "username": "u"})
    assert response.status_code == 400 and "not available yet" in response.content.decode()
    assert Session.objects.count() == 0


# --- bad links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {**AD_HOC, "port": "99999"},
        {**AD_HOC, "port": "0"},
        {**AD_HOC, "port": "-1"},
        {**AD_HOC, "port": "22x"},
        {**AD_HOC, "port": "²"},
        {**AD_HOC, "port": "9" * 5000},
        {**AD_HOC, "protocol": "gopher"},
        {"protocol": "ssh"},
        {**AD_HOC, "hostname": ""},
        {**AD_HOC, "hostname": "x" * 300},
        {**AD_HOC, "hostname": "a b"},
        {**AD_HOC, "hostname": "<script>"},
        {**AD_HOC, "username": "u" * 300},
        {**AD_HOC, "width": "5"},
        {**AD_HOC, "height": "wide"},
        {**AD_HOC, "dpi": "100000"},
        {**BOOK, "scope": "galaxy"},
        {**BOOK, "username": "u" * 300},
    ],
)
def test_bad_link_is_a_400_page(book, params):
    response = browser("admin", groups=["ops"]).get(connect_url(**params))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert 'role="alert"' in response.content.decode()
    assert Session.objects.count() == 0


@pytest.mark.parametrize("params", [{**AD_HOC, "hostname": "x" * 300}, {**AD_HOC, "username": "u" * 300}])
def test_bad_post_is_a_400_page(params):
    response = browser("admin").post("/api/connect", {**params, "password": "pw"})
    assert response.status_code == 400 and Session.objects.count() == 0


def test_error_page_escapes_the_link():
    response = browser("poweruser").get(connect_url(hostname="10.0.0.1", username='"><script>alert(1)</script>'))
    assert b"<script>alert(1)" not in response.content


# --- /client/<id> ----------------------------------------------------------------------------


def make_session(owner, key="abc"):
    return Session.objects.create(
        owner=owner, session_type="ssh", host="10.0.0.1", port=22, username="root",
        secrets=json.dumps({"password": "pw-in-secrets"}), share_digest=share_digest(key),
    )


def test_owner_opens_the_client_page():
    client = browser("poweruser")
    session = make_session(client.user)
    response = client.get(f"/client/{session.pk}")
    assert response.status_code == 200
    text = response.content.decode()
    assert f'data-session="{session.pk}"' in text and "root@10.0.0.1:22" in text
    assert 'id="client-share"' in text and 'id="client-terminate"' in text
    assert "pw-in-secrets" not in text


def test_client_page_of_someone_elses_session_offers_no_controls():
    session = make_session(make_user("poweruser"))
    client = browser("operator")
    assert client.post(f"/client/{session.pk}/join", {"key": "abc"}).status_code == 302
    text = client.get(f"/client/{session.pk}").content.decode()
    assert 'data-key' not in text and "abc" not in text
    assert 'id="client-share"' not in text and 'id="client-terminate"' not in text


def test_anonymous_client_page_goes_to_login(client):
    session = make_session(make_user("operator"))
    response = client.get(f"/client/{session.pk}")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/login" and parse_qs(location.query)["next"] == [f"/client/{session.pk}"]


def test_unknown_client_page_is_not_found():
    assert browser("operator").get("/client/00000000-0000-4000-8000-000000000000").status_code == 404


def test_share_url_from_the_api_leads_to_the_join_page_with_its_key_in_the_fragment(client_as):
    api = client_as("poweruser")
    body = api.post("/api/sessions", {"session_type": "ssh", "hostname": "10.0.0.1"}, format="json").json()
    parts = urlsplit(body["share_url"])
    assert parts.path == body["client_url"] + "/join" and not parts.query and parts.fragment.startswith("key=")
    page = browser("operator").get(parts.path)  # what a browser sends: never the fragment
    assert page.status_code == 200 and b"join.js" in page.content


def test_share_link_key_is_kept_whole():
    session = make_session(make_user("poweruser"), key="a&b#c")
    client = browser("operator")
    assert client.post(f"/client/{session.pk}/join", {"key": "a&b#c"}).status_code == 302
    assert client.get(f"/client/{session.pk}").status_code == 200


def test_password_field_is_never_prefilled(book):
    Connection.objects.filter(pk=book.pk).update(prompt_credentials=True)
    text = browser(groups=["ops"]).get(connect_url(**BOOK)).content.decode()
    assert re.search(r'<input name="password"[^>]*value=', text) is None
    assert "stored-pw" not in text
