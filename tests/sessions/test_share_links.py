"""Share links in the browser's pages: /client/<id> answers 404 to whoever may not attach, the link
is redeemed by POST from /client/<id>/join, and its key never appears in a URL a server sees:
checked in the access log of a real daphne serving the whole flow."""

import asyncio
import http.cookiejar
import json
import re
import time
import urllib.parse
import urllib.request

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from accounts.models import Role
from sessions.models import Session
from sessions.services.sessions import connect_connection
from tests.factories import make_connection, make_user, make_user_token
from tests.processes import daphne_process

pytestmark = pytest.mark.django_db


def open_session(owner, **extra):
    client = Client()
    client.force_login(owner)
    body = {"session_type": "ssh", "hostname": "10.0.0.1", "username": "root", "password": "pw", **extra}
    created = client.post("/api/sessions", body, content_type="application/json").json()
    return Session.objects.get(pk=created["session_id"]), created


def signed_in(user):
    browser = Client()
    browser.force_login(user)
    return browser


def key_of(share_url):
    return share_url.partition("#key=")[2]


# --- /client/<id> -----------------------------------------------------------------------------


def test_owner_and_supervisor_get_the_terminal_page():
    owner = make_user("poweruser")
    session, _ = open_session(owner)
    for user in (owner, make_user("admin")):
        response = signed_in(user).get(f"/client/{session.pk}")
        assert response.status_code == 200 and b'id="terminal"' in response.content


@pytest.mark.parametrize("role", ["viewer", "operator", "poweruser"])
def test_client_page_of_a_session_you_may_not_attach_to_is_not_found(role):
    session, _ = open_session(make_user("poweruser"))
    response = signed_in(make_user(role)).get(f"/client/{session.pk}")
    assert response.status_code == 404 and b'id="terminal"' not in response.content
    assert session.target.encode() not in response.content


def test_client_page_of_a_demoted_owner_is_not_found():
    owner = make_user("poweruser")
    session, _ = open_session(owner)
    owner.role = Role.objects.get(pk="viewer")
    owner.save(update_fields=["role"])
    assert signed_in(owner).get(f"/client/{session.pk}").status_code == 404


def test_client_page_of_an_operator_whose_connection_share_was_revoked_is_not_found():
    operator = make_user("operator")
    connection = make_connection(make_user("poweruser"), host="10.0.0.1", username="root", password="pw")
    share = connection.shares.create(user=operator)
    browser = signed_in(operator)
    session_id = connect_connection(actor=operator, connection=connection)[0].pk
    assert browser.get(f"/client/{session_id}").status_code == 200
    share.delete()
    assert browser.get(f"/client/{session_id}").status_code == 404


def test_a_key_in_the_query_string_opens_nothing():
    session, created = open_session(make_user("poweruser"))
    stranger = signed_in(make_user("operator"))
    key = key_of(created["share_url"])
    assert stranger.get(f"/client/{session.pk}?key={key}").status_code == 404
    assert stranger.get(f"/client/{session.pk}&key={key}").status_code == 404


# --- the share link ------------------------------------------------------------------------------


def test_share_urls_carry_the_key_only_in_the_fragment():
    owner = make_user("poweruser")
    session, created = open_session(owner)
    rotated = signed_in(owner).post(
        f"/api/sessions/{session.pk}/share", {"share_mode": "read-write"}, content_type="application/json"
    ).json()
    for url in (created["share_url"], rotated["share_url"]):
        parts = urllib.parse.urlsplit(url)
        key = key_of(url)
        assert parts.path == f"/client/{session.pk}/join" and parts.query == "" and key
        assert key not in parts.path


def test_the_join_page_is_the_same_for_any_session_and_tells_nothing():
    session, created = open_session(make_user("poweruser"))
    stranger = signed_in(make_user("operator"))
    page = stranger.get(f"/client/{session.pk}/join")
    assert page.status_code == 200 and b"join.js" in page.content
    assert session.target.encode() not in page.content and key_of(created["share_url"]).encode() not in page.content


@pytest.mark.parametrize("key", ["", "wrong", "x" * 5000])
def test_joining_with_a_wrong_key_is_not_found(key):
    session, _ = open_session(make_user("poweruser"))
    stranger = signed_in(make_user("operator"))
    assert stranger.post(f"/client/{session.pk}/join", {"key": key}).status_code == 404
    assert stranger.get(f"/client/{session.pk}").status_code == 404


def test_joining_opens_the_page_until_the_link_is_rotated():
    owner = make_user("poweruser")
    session, created = open_session(owner)
    friend = signed_in(make_user("operator"))
    response = friend.post(f"/client/{session.pk}/join", {"key": key_of(created["share_url"])})
    assert response.status_code == 302 and response["Location"] == f"/client/{session.pk}"
    page = friend.get(f"/client/{session.pk}")
    assert page.status_code == 200 and b'id="share-dialog"' not in page.content
    signed_in(owner).post(f"/api/sessions/{session.pk}/share", {}, content_type="application/json")
    assert friend.get(f"/client/{session.pk}").status_code == 404


def test_joining_anonymously_goes_to_sign_in_first():
    session, created = open_session(make_user("poweruser"))
    anonymous = Client()
    page = anonymous.get(f"/client/{session.pk}/join")
    assert page.status_code == 200
    assert f'data-login="/login?next=/client/{session.pk}/join"'.encode() in page.content
    response = anonymous.post(f"/client/{session.pk}/join", {"key": key_of(created["share_url"])})
    assert response.status_code == 302 and "login" in response["Location"]


# --- daphne's access log ---------------------------------------------------------------------------


def browse(base, user):
    """A urllib opener with ``user``'s login cookie, sending what a browser sends (no fragment)."""
    jar = http.cookiejar.CookieJar()
    jar.set_cookie(http.cookiejar.Cookie(
        0, "sessionid", signed_in(user).cookies["sessionid"].value, None, False, "127.0.0.1", False, False, "/", True,
        False, None, False, None, None, {},
    ))
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)), jar


@pytest.mark.django_db(transaction=True)
def test_daphne_access_log_never_holds_the_share_key(tmp_path):
    owner, friend = make_user("poweruser"), make_user("operator")
    _, token = make_user_token(owner)
    log = tmp_path / "daphne.log"
    with daphne_process(log=log) as daphne:
        base = daphne.base
        api = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps({"session_type": "ssh", "hostname": "10.0.0.1", "username": "root", "password": "pw"})
        with urllib.request.urlopen(urllib.request.Request(base + "/api/sessions", body.encode(), api)) as answer:
            created = json.loads(answer.read())
        share = urllib.request.Request(base + f"/api/sessions/{created['session_id']}/share", b"{}", api)
        with urllib.request.urlopen(share) as answer:
            share_url = json.loads(answer.read())["share_url"]
        keys = [created["share_url"].rpartition("key=")[2], share_url.rpartition("key=")[2]]

        # The friend's browser follows the link: it never sends the fragment.
        opener, jar = browse(base, friend)
        with opener.open(base + urllib.parse.urldefrag(share_url).url) as page:
            html = page.read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, "key": keys[1]}).encode()
        redeem = urllib.request.Request(base + urllib.parse.urldefrag(share_url).url, form,
                                        {"Referer": base + "/", "Origin": base})
        with opener.open(redeem) as terminal_page:
            assert terminal_page.url == base + created["client_url"] and b'id="terminal"' in terminal_page.read()
        with urllib.request.urlopen(urllib.request.Request(
            base + f"/api/sessions/{created['session_id']}/banner", headers={"X-Share-Key": keys[1]}
        )) as banner:
            assert banner.status == 200

        async def watch():
            from websockets.asyncio.client import connect

            cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
            url = base.replace("http://", "ws://") + f"/ws/sessions/{created['session_id']}/terminal?cols=80&rows=24"
            async with connect(url, additional_headers={"Cookie": cookies, "Origin": base}) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 10))

        assert async_to_sync(watch)() == {"type": "access", "access": "viewer"}
        deadline = time.monotonic() + 10
        while "/terminal" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    text = log.read_text()
    assert "/join" in text and "/banner" in text and "/terminal" in text  # the log is the access log
    assert all(key not in text for key in keys)
