"""The recordings features attacked from each role: reading others' trails, spending others'
download ids, granting without holding, ending others' sessions, leaving the recordings
directory, and bad input that must be a JSON 4xx (on PostgreSQL too). Each test asserts the
safe behaviour. Real sessions against the `sshd` fixture, few of them."""

import json
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from recordings import indexing
from recordings.models import DownloadTicket, TrailAccessRole, TrailTag
from sessions.choices import LIVE_STATUSES
from sessions.models import Session
from sessions.services.sessions import create_session, rotate_share_key
from tests.conftest import bearer
from tests.factories import make_role, make_user, make_user_token
from tests.recordings.conftest import record

pytestmark = pytest.mark.django_db(transaction=True)

API = "/connection-manager/api/v1/connections"


def api(user, cap=None):
    _, token = make_user_token(user, max_role=cap)
    client = bearer(token)
    client.raise_request_exception = False
    client.user = user
    return client


def browser(user):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def body_of(response):
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


@pytest.fixture
def world(sshd):
    """alice's indexed session, and bob's (the victim): bob types the target's password into a
    silent `read -s`, and his output holds a marker only he may see."""
    alice, bob = make_user("poweruser"), make_user("poweruser")
    mine, _ = record(alice, sshd, [(["echo alicemark-$((6*7))\r"], "alicemark-42")])
    theirs, _ = record(
        bob, sshd,
        [(["echo bobsecret-$((6*7))\r"], "bobsecret-42"),
         (["echo '<b>'x$((1+1))ss'</b>'\r"], "<b>x2ss</b>"),
         (["read -s x; echo rd-$((1+1))\r"], "x; echo rd-"),
         ([sshd.password + "\r"], "rd-2")],
        pause=0.4,
    )
    for recording in (mine, theirs):
        indexing.index_recording(recording.pk)
        recording.refresh_from_db()
    return {"alice": alice, "bob": bob, "mine": mine, "theirs": theirs, "password": sshd.password}


def reads_nothing_of_bob(client, world, *, expect_403=False):
    """Every read path for bob's trail, through ``client``; returns a list of leaks found."""
    theirs, bob = world["theirs"], world["bob"]
    sid = theirs.session_id
    leaks = []
    bad = (200, 201, 204)

    def check(label, response, echoed=()):
        if response.status_code >= 500:
            leaks.append(f"{label}: {response.status_code}")
        elif expect_403 and response.status_code not in (403, 404):
            leaks.append(f"{label}: {response.status_code} (expected 403/404)")
        payload = body_of(response)
        # What the request itself carried (a query echoed back) is no leak.
        for needle in (b"bobsecret-42", theirs.name.encode(), str(sid).encode(), bob.email.encode()):
            if needle in payload and needle.decode() not in echoed:
                leaks.append(f"{label}: holds {needle!r}")

    for path in (f"/api/recordings/{theirs.name}", f"/api/recordings/{theirs.name}/commands",
                 f"/api/recordings/{theirs.name}/integrity", f"/api/recordings/{theirs.name}?download=true"):
        response = client.get(path)
        check(path, response)
        if response.status_code in bad:
            leaks.append(f"{path}: {response.status_code}")
    check("list", client.get("/api/recordings"))
    check("list q", client.get("/api/recordings", {"q": "bobsecret"}))
    check("list user", client.get("/api/recordings", {"user": bob.email}), echoed=(bob.email,))
    check("list user id", client.get("/api/recordings", {"user": str(bob.pk)}))
    check("search", client.get("/api/recordings/search", {"q": "bobsecret"}))
    check("search email", client.get("/api/recordings/search", {"q": bob.email}), echoed=(bob.email,))
    check("audited list", client.get(API, {"limit": 1000}))
    for path in (f"{API}/{sid}", f"{API}/{sid}/access_roles"):
        response = client.get(path)
        check(path, response)
        if response.status_code in bad:
            leaks.append(f"{path}: {response.status_code}")
    channel = theirs.session.trail_channels.first()
    if channel is not None:
        response = client.post(f"{API}/{sid}/channel/{channel.pk}/log")
        check("log ticket", response)
        if response.status_code in bad:
            leaks.append(f"log ticket: {response.status_code}")
    TrailTag.objects.get_or_create(session_id=sid, name="bobtag-secret")
    tags = client.get(f"{API}/tags", {"query": "bobtag"})
    if b"bobtag-secret" in tags.content:
        leaks.append("tags list holds bob's tag")
    for body in ({"keywords": "bobsecret"}, {"id": [str(sid)]}, {"user_id": [str(bob.pk)]},
                 {"user_display_name": [bob.email]}, {"tags": ["bobtag-secret"]}, {"keywords": bob.email},
                 {"keywords": str(sid)}):
        check(f"audited search {body}", client.post(f"{API}/search", body, format="json"), echoed=(bob.email,))
    return leaks


def test_each_attacker_role_reads_nothing_of_another_users_trail(world):
    """alice (owner of her own), an operator, a viewer, a custom role without recordings.view, an
    auditor's token capped below view_any: none of them reads bob's trail by any path."""
    attackers = {
        "alice": api(world["alice"]),
        "operator": api(make_user("operator")),
        "viewer": api(make_user("viewer")),
    }
    make_role("watcher", {"sessions.view", "sessions.watch_any", "audit.view"})
    attackers["custom-no-recordings"] = api(make_user("watcher"))
    make_role("viewany-only", {"recordings.view_any"})  # view_any without view
    attackers["view_any-without-view"] = api(make_user("viewany-only"))
    cap = make_role("auditcap", {"recordings.view", "sessions.view"})
    attackers["auditor-capped"] = api(make_user("auditor"), cap=cap)
    attackers["admin-capped-operator"] = api(make_user("admin"), cap=Role.objects.get(pk="operator"))
    attackers["auditor-capped-sessions-only"] = api(make_user("auditor"), cap=make_role("sv", {"sessions.view"}))
    found = {name: reads_nothing_of_bob(client, world) for name, client in attackers.items()}
    assert {name: leaks for name, leaks in found.items() if leaks} == {}
    # Sanity: alice still reads her own.
    assert attackers["alice"].get(f"/api/recordings/{world['mine'].name}").status_code == 200


def test_share_link_holder_reads_no_recording_or_trail(world):
    """A share-link viewer of bob's session (a redeemed link in their login session, or the key in
    X-Share-Key) gets no recording, trail or log of it."""
    session = Session.objects.get(pk=world["theirs"].session_id)
    key = rotate_share_key(actor=world["bob"], session=session)
    carol = make_user("operator")
    client = browser(carol)
    client.post(f"/client/{session.pk}/join", {"key": key})
    leaks = reads_nothing_of_bob(client, world)
    client_api = api(carol)
    client_api.credentials(HTTP_AUTHORIZATION=client_api._credentials["HTTP_AUTHORIZATION"], HTTP_X_SHARE_KEY=key)
    leaks += reads_nothing_of_bob(client_api, world)
    for path in ("/recordings", f"/recordings/{world['theirs'].name}", "/recordings?q=bobsecret"):
        response = client.get(path)
        if b"bobsecret-42" in response.content or (path.endswith(".cast") and response.status_code == 200):
            leaks.append(f"console {path}: {response.status_code}")
    assert not leaks, leaks


def test_console_pages_leak_nothing_of_others(world):
    theirs, bob = world["theirs"], world["bob"]
    client = browser(world["alice"])
    leaks = []
    for params in ({"q": "bobsecret"}, {"q": bob.email}, {"user": bob.email}, {"user": str(bob.pk)},
                   {"q": theirs.name}, {"q": "127.0.0.1"}, {"q": "echo"}, {"connection": ""}, {"q": "rd-"}):
        response = client.get("/recordings", params)
        for needle in (b"bobsecret-42", bob.email.encode(), theirs.name.encode()):
            if needle in response.content and needle.decode() not in params.values():
                leaks.append(f"{params}: holds {needle!r}")
        htmx = client.get("/recordings", params, HTTP_HX_REQUEST="true")
        if b"bobsecret-42" in htmx.content or (theirs.name.encode() in htmx.content and theirs.name not in params.values()):
            leaks.append(f"htmx {params}")
    play = client.get(f"/recordings/{theirs.name}")
    if play.status_code == 200 or b"bobsecret" in play.content:
        leaks.append(f"play: {play.status_code}")
    assert not leaks, leaks


def test_the_targets_password_is_in_no_endpoint(world):
    """bob typed the target's password into `read -s`; PAM also holds it. No endpoint tells it,
    to bob himself or to an admin."""
    password = world["password"].encode()
    theirs = world["theirs"]
    sid = theirs.session_id
    admin = api(make_user("admin"))
    leaks = []
    assert password not in theirs.path.read_bytes(), "in the cast file"
    channel = theirs.session.trail_channels.get(kind="shell")
    base = f"{API}/{sid}/channel/{channel.pk}/log"
    for fmt in ("jsonl", "hex"):
        ticket = admin.post(base).json()["session_id"]
        log = body_of(admin.get(f"{base}/{ticket}", {"format": fmt}))
        if password in log or password.hex().encode() in log.replace(b" ", b""):
            leaks.append(f"log {fmt}")
    paths = [f"/api/recordings/{theirs.name}", f"/api/recordings/{theirs.name}/commands",
             f"/api/recordings/{theirs.name}/integrity", "/api/recordings", f"{API}/{sid}", API,
             f"{API}/{sid}/access_roles"]
    for path in paths:
        if password in body_of(admin.get(path)):
            leaks.append(path)
    if admin.get("/api/recordings/search", {"q": world["password"]}).json()["hits"]:
        leaks.append("search hits")
    if admin.post(f"{API}/search", {"keywords": world["password"]}, format="json").json()["count"]:
        leaks.append("audited keyword search")
    console = browser(make_user("admin"))
    for path in (f"/recordings/{theirs.name}", "/recordings?q=read", f"/recordings?q={world['password']}"):
        page = console.get(path).content
        if world["password"] in path:  # the search box echoes the query: look at the hits only
            page = page.replace(b'value="' + password + b'"', b"").replace(b"\xe2\x80\x9c" + password, b"")
            if b'data-testid="search-hits"' in page:
                leaks.append(f"{path}: hits")
        if password in page:
            leaks.append(path)
    # A session not yet connected still holds the password (encrypted): its trail must not show it.
    pending, _ = create_session(actor=world["bob"], session_type="ssh", host="127.0.0.1", port=22,
                                username="pam", password=world["password"])
    for path in (f"{API}/{pending.pk}", API):
        if password in body_of(admin.get(path, {"limit": 1000})):
            leaks.append(f"pending {path}")
    assert not leaks, leaks


# --- download ids -----------------------------------------------------------------------------


def test_download_ids_cannot_be_spent_by_others_twice_late_or_elsewhere(world):
    theirs = world["theirs"]
    sid = theirs.session_id
    channel = theirs.session.trail_channels.get(kind="shell")
    base = f"{API}/{sid}/channel/{channel.pk}/log"
    auditor_user = make_user("auditor")
    auditor = api(auditor_user)
    other_auditor = api(make_user("auditor"))
    admin = api(make_user("admin"))
    results = {}

    ticket = auditor.post(base).json()["session_id"]
    results["other auditor"] = other_auditor.get(f"{base}/{ticket}").status_code
    results["admin"] = admin.get(f"{base}/{ticket}").status_code
    results["bob (owner)"] = api(world["bob"]).get(f"{base}/{ticket}").status_code
    # Another session's URL with this id (alice's own trail, alice can't spend auditor's id anyway;
    # the auditor tries it on alice's channel).
    mine = world["mine"]
    my_channel = mine.session.trail_channels.get(kind="shell")
    results["wrong session"] = auditor.get(f"{API}/{mine.session_id}/channel/{my_channel.pk}/log/{ticket}").status_code
    results["wrong channel id"] = auditor.get(f"{API}/{sid}/channel/{my_channel.pk}/log/{ticket}").status_code
    # Case/format variants of the same id.
    results["upper-case id"] = auditor.get(f"{base}/{ticket.upper()}").status_code
    results["braced id"] = auditor.get(f"{base}/%7B{ticket}%7D").status_code
    results["digest as id"] = auditor.get(f"{base}/{DownloadTicket.objects.get().digest}").status_code
    # Its maker spends it once (after all the failed tries above).
    results["maker first"] = auditor.get(f"{base}/{ticket}").status_code
    results["maker again"] = auditor.get(f"{base}/{ticket}").status_code
    # Expired.
    ticket = auditor.post(base).json()["session_id"]
    DownloadTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    results["expired"] = auditor.get(f"{base}/{ticket}").status_code
    # A log id spent as a file download on a file URL.
    ticket = auditor.post(base).json()["session_id"]
    results["log id at file url"] = auditor.get(f"{API}/{sid}/channel/{channel.pk}/file/{uuid.uuid4()}/{ticket}").status_code
    # Issued while the trail was shared with the operator role, spent after the role lost it.
    operator_user = make_user("operator")
    operator = api(operator_user)
    TrailAccessRole.objects.create(session_id=sid, role_id="operator")
    op_ticket = operator.post(base).json()["session_id"]
    TrailAccessRole.objects.all().delete()
    results["after revoke"] = operator.get(f"{base}/{op_ticket}").status_code
    # The operator is demoted to viewer after issuing.
    TrailAccessRole.objects.create(session_id=sid, role_id="operator")
    op_ticket = operator.post(base).json()["session_id"]
    operator_user.role_id = "viewer"
    operator_user.save(update_fields=["role_id"])
    results["after demotion"] = operator.get(f"{base}/{op_ticket}").status_code
    # A capped token of the maker (cap without recordings.view) spends the maker's id.
    auditor_ticket = auditor.post(base).json()["session_id"]
    capped = api(auditor_user, cap=make_role("sv", {"sessions.view"}))
    results["maker capped without recordings.view"] = capped.get(f"{base}/{auditor_ticket}").status_code
    expected = {k: 200 if k == "maker first" else (403, 404) for k in results}
    wrong = {k: v for k, v in results.items() if not (v == expected[k] or (isinstance(expected[k], tuple) and v in expected[k]))}
    assert not wrong, wrong


# --- grants, tags, disconnect -------------------------------------------------------------------


def test_grants_and_tags_need_view_any_held_for_this_request(world):
    sid = world["theirs"].session_id
    TrailAccessRole.objects.create(session_id=sid, role_id="operator")  # operators read bob's trail
    TrailAccessRole.objects.create(session_id=sid, role_id="poweruser")  # so does alice
    attackers = {
        "operator (shared)": api(make_user("operator")),
        "alice (shared)": api(world["alice"]),
        "bob (owner)": api(world["bob"]),
        "auditor capped": api(make_user("auditor"), cap=make_role("rv", {"recordings.view"})),
        "custom view+delete": api(make_user(make_role("vd", {"recordings.view", "recordings.delete"}).pk)),
    }
    results = {}
    for name, client in attackers.items():
        results[(name, "grant")] = client.post(f"{API}/{sid}/access_roles/viewer").status_code
        results[(name, "grant admin")] = client.post(f"{API}/{sid}/access_roles/admin").status_code
        results[(name, "revoke")] = client.delete(f"{API}/{sid}/access_roles/operator").status_code
        results[(name, "revoke all")] = client.delete(f"{API}/access_roles/operator").status_code
        results[(name, "tags")] = client.put(f"{API}/{sid}/tags", ["pwned"], format="json").status_code
        results[(name, "tags via POST")] = client.post(f"{API}/{sid}/tags", ["pwned"], format="json").status_code
        results[(name, "tags via PATCH")] = client.patch(f"{API}/{sid}/tags", ["pwned"], format="json").status_code
        results[(name, "grant via PUT")] = client.put(f"{API}/{sid}/access_roles/viewer").status_code
    wrong = {k: v for k, v in results.items() if v not in (403, 404, 405)}
    assert not wrong, wrong
    assert set(TrailAccessRole.objects.values_list("role_id", flat=True)) == {"operator", "poweruser"}
    assert not TrailTag.objects.exists()


def test_grant_to_a_role_does_not_lend_more_than_the_role_holds(world):
    """An auditor shares bob's trail with `viewer`: viewers (no recordings.view) still read nothing."""
    sid = world["theirs"].session_id
    auditor = api(make_user("auditor"))
    assert auditor.post(f"{API}/{sid}/access_roles/viewer").status_code == 204
    leaks = reads_nothing_of_bob(api(make_user("viewer")), world)
    assert not leaks, leaks


def test_disconnect_of_someone_elses_live_session_is_refused(world, sshd):
    bob = world["bob"]
    live, _ = create_session(actor=bob, session_type="ssh", host=sshd.host, port=sshd.port, username=sshd.user,
                             password=sshd.password)
    assert live.status in LIVE_STATUSES
    TrailAccessRole.objects.create(session=live, role_id="operator")
    TrailAccessRole.objects.create(session=live, role_id="poweruser")
    terminator = make_role("viewany-terminate-own", {"recordings.view", "recordings.view_any", "sessions.terminate_own"})
    attackers = {
        "alice (poweruser, shared)": api(world["alice"]),
        "operator (shared)": api(make_user("operator")),
        "custom view_any+terminate_own": api(make_user(terminator.pk)),
        "auditor": api(make_user("auditor")),
        "admin capped at operator": api(make_user("admin"), cap=Role.objects.get(pk="operator")),
    }
    results = {}
    for name, client in attackers.items():
        response = client.post(f"{API}/{live.pk}/disconnect")
        results[name] = response.status_code
        live.refresh_from_db()
        if live.status not in LIVE_STATUSES:
            results[name] = f"ENDED it ({response.status_code})"
            break
    wrong = {k: v for k, v in results.items() if v not in (403, 404)}
    assert not wrong, wrong
    assert Session.objects.get(pk=live.pk).status in LIVE_STATUSES


# --- names and paths ----------------------------------------------------------------------------


TRAVERSALS = [
    "2026/12/04/../../../../secret.cast",
    "2026/12/04/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.cast",
    "2026%2f12%2f04%2f..%2f..%2f..%2f..%2fsecret.cast",
    "..%c0%af..%c0%afsecret.cast",
    "%2E%2E/%2E%2E/%2E%2E/secret.cast",
    "....//....//secret.cast",
    "2026/12/04/..;/..;/secret.cast",
    "%5c..%5c..%5csecret.cast",
    "\u0662\u0660\u0662\u0666/\u0661\u0662/\u0660\u0664/00000000-0000-0000-0000-000000000000.cast",
    "2026/12/04/00000000-0000-0000-0000-000000000000.cast%0a",
    "2026/12/04/00000000-0000-0000-0000-000000000000.cast%00",
    "//secret.cast",
    "%2fsecret.cast",
    "2026/12/04/00000000-0000-0000-0000-000000000000.cast/../../../../../secret.cast",
]


@pytest.mark.parametrize("suffix", ["", "/commands", "/integrity", "?download=true"])
def test_recording_names_reach_no_file_outside(client_as, suffix):
    sentinels = [settings.DATA_DIR / "secret.cast", settings.RECORDINGS_DIR.parent.parent / "secret.cast", settings.RECORDINGS_DIR / "secret.cast"]
    created = []
    for sentinel in sentinels:
        if not sentinel.exists():
            sentinel.parent.mkdir(parents=True, exist_ok=True)
            sentinel.write_text("sentinel-content-xyz")
            created.append(sentinel)
    try:
        admin = client_as("admin")
        admin.raise_request_exception = False
        console = browser(admin.user)
        bad = []
        for name in TRAVERSALS:
            for client, prefix in ((admin, "/api/recordings/"), (console, "/recordings/")):
                if suffix and prefix == "/recordings/":
                    continue
                response = client.get(prefix + name + suffix)
                payload = body_of(response)
                if response.status_code not in (400, 404) or b"sentinel-content-xyz" in payload:
                    bad.append((prefix + name + suffix, response.status_code))
            if not suffix:
                response = admin.delete("/api/recordings/" + name)
                if response.status_code not in (400, 404):
                    bad.append(("DELETE " + name, response.status_code))
        assert not bad, bad
        assert all(s.exists() for s in created)
    finally:
        for sentinel in created:
            sentinel.unlink(missing_ok=True)


# --- bad input: JSON 4xx, never a 500 or HTML ----------------------------------------------------


def json_4xx(response):
    kind = response.get("Content-Type", "")
    return 400 <= response.status_code < 500 and kind.startswith("application/json")


def test_bad_input_to_the_audited_api_is_a_json_4xx(world):
    auditor = api(make_user("auditor"))
    sid = world["theirs"].session_id
    channel = world["theirs"].session.trail_channels.get(kind="shell")
    huge = "9" * 30
    gets = [
        f"{API}/not-a-uuid", f"{API}/{uuid.uuid4()}", f"{API}?limit={huge}",
        f"{API}?offset=-1", f"{API}?limit=1e3", f"{API}?sortkey=password", f"{API}?sortkey=owner__password",
        f"{API}?sortdir=sideways", f"{API}/tags?limit=abc", f"{API}?format=api",
        f"{API}/{sid}?format=html", f"{API}/{sid}/channel/{huge}/log/x",
        f"{API}/{sid}/channel/-1/log/x", f"{API}/{sid}/channel/{channel.pk}/log/x?format=api",
        f"{API}/{sid}/channel/{channel.pk}/log/x?filter=stdout,,,bogus", f"{API}/{sid}/channel/{channel.pk}/file/zz/x",
        f"{API}/{sid}/channel/{channel.pk}/file/{uuid.uuid4()}/x", f"{API}/%00", f"{API}/{sid}%00",
        f"{API}/{sid}/channel/%EF%BC%91/log/x",
    ]
    posts = [
        f"{API}/{sid}/channel/{huge}/log", f"{API}/{sid}/channel/\u0661/log",
        f"{API}/{sid}/channel/{channel.pk}/file/not-uuid", f"{API}/{sid}/access_roles/{'r' * 5000}",
        f"{API}/{sid}/disconnect",
    ]
    bad = []
    for path in gets:
        response = auditor.get(path)
        if not json_4xx(response):
            bad.append(("GET", path, response.status_code, response.get("Content-Type")))
    for path in posts:
        response = auditor.post(path)
        if not json_4xx(response):
            bad.append(("POST", path, response.status_code, response.get("Content-Type")))
    assert not bad, bad


def test_channel_id_with_a_superscript_digit_is_a_404_not_a_500(world):
    """_channel(): "\u00b2".isdigit() is True but int("\u00b2") raises ValueError."""
    auditor = api(make_user("auditor"))
    sid = world["theirs"].session_id
    file_id = uuid.uuid4()
    results = {
        "POST log ticket": auditor.post(f"{API}/{sid}/channel/%C2%B2/log").status_code,
        "GET log download": auditor.get(f"{API}/{sid}/channel/%C2%B2/log/x").status_code,
        "POST file ticket": auditor.post(f"{API}/{sid}/channel/%C2%B2/file/{file_id}").status_code,
        "GET file download": auditor.get(f"{API}/{sid}/channel/%C2%B2/file/{file_id}/x").status_code,
    }
    assert all(code == 404 for code in results.values()), results


SEARCH_BODIES = [
    [], "text", 5, None, True, {"keywords": ["a"]}, {"keywords": {"a": 1}}, {"limit": 10**30}, {"limit": 1.5e3}, {"sortkey": {"x": 1}}, {"sortkey": ["id"]}, {"sortdir": None},
    {"user_id": 7},
    {"connected": {"from": "2024-02-30T10:00:00Z"}}, {"connected": {"from": "2024-13-01T00:00:00"}},
    {"disconnected": {"to": "2024-01-01T25:00:00"}}, {"last_activity": {"from": 20240101}},
    {"connected": []}, {"connected": {"since": "x"}}, {"connected": {"from": "2024-01-01T00:00:00+25:00"}},
    {"target_host_id": ["x" * 5000]},
    {"status": "CONNECTED"}, {"status": [None]}, {"force_disconnect": None}, {"force_disconnect": {"a": 1}},
    {"has_access_roles": None}, {"id": ["\uff11" * 32]}, {"id": [str(uuid.uuid4())] * 5}, {"id": ["{" + "0" * 32 + "}"]},
    {"id": ["0" * 33]}, {"mode": 1}, {"tags": [1]}, {"access_roles": [{"id": "x"}]},
    {"keywords": " ".join(f"w{i}xyz" for i in range(600))},
    {"user_roles": [f"r{i}" for i in range(40000)]},
]


@pytest.mark.parametrize("index", range(len(SEARCH_BODIES)))
def test_weird_search_bodies_are_a_json_4xx_or_a_result(index):
    body = SEARCH_BODIES[index]
    auditor = api(make_user("auditor"))
    response = auditor.post(f"{API}/search", json.dumps(body), content_type="application/json")
    assert response.status_code < 500 and response.get("Content-Type", "").startswith("application/json"), (
        body if len(str(body)) < 300 else str(body)[:300], response.status_code, response.content[:300])


def test_huge_offsets_and_bad_addresses_are_a_400():
    """_page() bounds offset below only; filtered() passes remote_address to a GenericIPAddressField
    lookup unchecked. On PostgreSQL: "bigint out of range" and "'not-an-ip' does not appear to be
    an IPv4 or IPv6 address" (ValueError), both 500s. SQLite answers 200. Run with
    PAM_DATABASE_URL=postgres://… to see them fail."""
    auditor = api(make_user("auditor"))
    results = {
        "search offset 1e30": auditor.post(f"{API}/search", {"offset": 1e30}, format="json").status_code,
        "search offset 10**30": auditor.post(f"{API}/search", json.dumps({"offset": 10**30}), content_type="application/json").status_code,
        "list ?offset=9*30": auditor.get(API, {"offset": "9" * 30}).status_code,
        "tags ?offset=9*30": auditor.get(f"{API}/tags", {"offset": "9" * 30}).status_code,
        "search remote_address": auditor.post(f"{API}/search", {"remote_address": ["not-an-ip"]}, format="json").status_code,
    }
    assert all(code < 500 for code in results.values()), results


@pytest.mark.parametrize("value", ["\u00b2", "\u2460", "9" * 40])
def test_search_user_id_that_isdigit_but_is_no_int_is_a_400(value):
    """filtered(): user_id values pass str.isdigit() then int(): a superscript digit raises
    ValueError, 40 digits overflow SQLite's INTEGER: 500s."""
    auditor = api(make_user("auditor"))
    response = auditor.post(f"{API}/search", {"user_id": [value]}, format="json")
    assert response.status_code < 500, (value, response.status_code, response.content)


def test_raw_bad_json_search_bodies(world):
    auditor = api(make_user("auditor"))
    bad = []
    for raw, kind in [
        (b'{"limit": Infinity}', "application/json"), (b'{"offset": NaN}', "application/json"),
        (b'{"keywords": "a\\u0000b"}', "application/json"), (b"{" * 5000, "application/json"),
        (b"\xff\xfe", "application/json"), (b"keywords=x&offset=1", "application/x-www-form-urlencoded"),
        (b"<a/>", "application/xml"),
    ]:
        response = auditor.post(f"{API}/search", raw, content_type=kind)
        if not json_4xx(response) and response.status_code != 200:
            bad.append((raw[:30], response.status_code, response.get("Content-Type")))
    assert not bad, bad


def test_a_lone_surrogate_in_a_json_body_is_a_400(world):
    """JSON allows "\\ud800"; Python keeps it as a lone surrogate, which the database driver
    cannot encode (UnicodeEncodeError): 500 on the audited search and on PUT tags."""
    auditor = api(make_user("auditor"))
    sid = world["theirs"].session_id
    results = {
        "search keywords": auditor.post(f"{API}/search", b'{"keywords": "\\ud800abc"}', content_type="application/json"),
        "search tags": auditor.post(f"{API}/search", b'{"tags": ["\\ud800"]}', content_type="application/json"),
        "PUT tags": auditor.put(f"{API}/{sid}/tags", b'["\\ud800"]', content_type="application/json"),
    }
    codes = {name: response.status_code for name, response in results.items()}
    assert all(json_4xx(response) or response.status_code == 200 for response in results.values()), codes


def test_weird_tag_bodies_are_a_json_4xx(world):
    auditor = api(make_user("auditor"))
    sid = world["theirs"].session_id
    bad = []
    for body in ({"tags": ["x"]}, "x", None, 5, [1], [["a"]], [None], ["a" * 65], [f"t{i}" for i in range(51)]):
        response = auditor.put(f"{API}/{sid}/tags", json.dumps(body), content_type="application/json")
        if not json_4xx(response):
            bad.append((str(body)[:40], response.status_code, response.content[:200]))
    response = auditor.put(f"{API}/{sid}/tags", b"tags=a&tags=b", content_type="application/x-www-form-urlencoded")
    if not json_4xx(response):
        bad.append(("form", response.status_code))
    assert not bad, bad
    assert not TrailTag.objects.exists()


def test_bad_input_to_the_session_broker_recordings_api_is_a_json_4xx(world):
    auditor = api(make_user("auditor"))
    bad = []
    for params in ({"offset": "9" * 30}, {"limit": "9" * 30}, {"limit": "-1"}, {"since": "2024-02-30T00:00:00"},
                   {"until": "x"}, {"connection": "\x00"}, {"q": "\x00\x00\x00"}, {"q": "%_\\" * 5},
                   {"status": "x" * 5000}, {"index_status": ["a", "b"]}):
        response = auditor.get("/api/recordings", params)
        if response.status_code >= 500 or not response.get("Content-Type", "").startswith("application/json"):
            bad.append(("list", params, response.status_code))
    for params in ({"q": "ab"}, {"q": "abc", "offset": "-1"}, {"q": "abc", "limit": "9" * 30},
                   {"q": "abc", "offset": "x"}, {"q": "a" * 100000}, {"q": "%%%"}, {"q": "___"},
                   {"q": "abc", "limit": "1e2"}):
        response = auditor.get("/api/recordings/search", params)
        if response.status_code >= 500 or not response.get("Content-Type", "").startswith("application/json"):
            bad.append(("search", str(params)[:60], response.status_code))
    assert not bad, bad


@pytest.mark.parametrize("value", ["\u00b2", "9" * 40])
def test_recordings_user_filter_that_isdigit_but_is_no_int_is_a_400(world, value):
    """RecordingFilter.by_user: value.isdigit() then int(value): a superscript digit raises
    ValueError, 40 digits overflow SQLite's INTEGER. 500 on GET /api/recordings and the console."""
    results = {
        "api": api(make_user("auditor")).get("/api/recordings", {"user": value}).status_code,
        "console": browser(make_user("auditor")).get("/recordings", {"user": value}).status_code,
        "operator api": api(make_user("operator")).get("/api/recordings", {"user": value}).status_code,
    }
    assert all(code < 500 for code in results.values()), results


def test_bad_input_to_the_console_pages_is_no_500(world):
    client = browser(make_user("auditor"))
    bad = []
    for params in ({"user": "\u0661\u0662"}, {"page": "9" * 30}, {"page": "-1"}, {"since": "2024-02-30"},
                   {"q": "\x00\x00\x00"}, {"connection": "x" * 3000}):
        response = client.get("/recordings", params)
        if response.status_code >= 500:
            bad.append(("index", params, response.status_code))
    for t in ("nan", "-inf", "x", "-5", "1e308"):
        response = client.get(f"/recordings/{world['theirs'].name}", {"t": t})
        if response.status_code >= 500:
            bad.append(("play", t, response.status_code))
    assert not bad, bad


@pytest.mark.parametrize("t", ["inf", "1e999"])
def test_play_page_start_time_stays_valid_json(world, t):
    """views.play: float("inf") passes max(0.0, ...); json_script then writes `Infinity`, which
    JSON.parse refuses, so the player page breaks (low: self-inflicted via a crafted link)."""
    client = browser(make_user("auditor"))
    response = client.get(f"/recordings/{world['theirs'].name}", {"t": t})
    script = response.content.split(b'id="player-page"')[1].split(b"</script>")[0].split(b">", 1)[1]
    json.loads(script)  # raises on Infinity
    assert b"Infinity" not in script


def test_nul_characters_in_urls_and_queries_are_no_500():
    """PostgreSQL refuses NUL even in a comparison (pam/rest/parsers.py refuses it in JSON bodies);
    query strings and path segments reach the same lookups. Only meaningful on PostgreSQL
    (PAM_DATABASE_URL=postgres://…); SQLite stores NUL."""
    owner = make_user("poweruser")
    session, _ = create_session(actor=owner, session_type="ssh", host="127.0.0.1", port=22, username="u", password="p")
    auditor = api(make_user("auditor"))
    bad = []
    requests = [
        ("get", "/api/recordings?user=%00"), ("get", "/api/recordings?connection=%00"),
        ("get", "/api/recordings?q=%00ab"), ("get", "/api/recordings?protocol=%00"),
        ("get", "/api/recordings?status=%00"), ("get", "/api/recordings?index_status=%00"),
        ("get", "/api/recordings/search?q=%00abc"), ("get", f"{API}/tags?query=%00"),
        ("delete", f"{API}/access_roles/%00"), ("post", f"{API}/{session.pk}/access_roles/%00"),
        ("delete", f"{API}/{session.pk}/access_roles/%00"), ("get", f"{API}/{session.pk}/channel/1/log/%00"),
        ("post", f"{API}/{session.pk}/channel/1/file/%00"), ("get", f"{API}?sortkey=%00"),
    ]
    for method, path in requests:
        response = getattr(auditor, method)(path)
        if response.status_code >= 500:
            bad.append((method, path, response.status_code))
    console = browser(make_user("auditor"))
    for path in ("/recordings?q=%00abc", "/recordings?user=%00", "/recordings?connection=%00", "/recordings?status=%00"):
        response = console.get(path)
        if response.status_code >= 500:
            bad.append(("console", path, response.status_code))
    assert not bad, bad


# --- more probes ---------------------------------------------------------------------------------


def test_terminal_output_is_escaped_in_console_hits_and_player(world):
    """bob's output holds HTML; an auditor's search hits and the player page escape it."""
    client = browser(make_user("auditor"))
    page = client.get("/recordings", {"q": "x2ss"}).content
    assert b'data-testid="search-hits"' in page  # the hit is listed…
    assert b"<b>x2ss</b>" not in page  # …escaped
    play = client.get(f"/recordings/{world['theirs'].name}").content
    assert b"<b>x" not in play


def test_head_and_options_do_not_spend_or_bypass_a_download_id(world):
    theirs = world["theirs"]
    channel = theirs.session.trail_channels.get(kind="shell")
    base = f"{API}/{theirs.session_id}/channel/{channel.pk}/log"
    auditor = api(make_user("auditor"))
    ticket = auditor.post(base).json()["session_id"]
    head = auditor.head(f"{base}/{ticket}")
    options = auditor.options(f"{base}/{ticket}")
    assert head.status_code in (403, 404, 405) and not body_of(head)
    assert b"bobsecret" not in options.content
    assert auditor.get(f"{base}/{ticket}").status_code == 200  # still unspent


def test_a_search_that_matches_nothing_visible_walks_the_whole_index(world):
    """One search costs a few queries for a caller who reads few recordings, however many of
    the others' chunks hold the word: their candidates are never fetched nor checked."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recordings.models import Recording, RecordingChunk
    from recordings.search import terms_of

    victim = Recording.objects.get(pk=world["theirs"].pk)
    start = RecordingChunk.objects.filter(recording=victim).count()
    text = "common words here everywhere"
    RecordingChunk.objects.bulk_create(
        RecordingChunk(recording=victim, seq=start + i, start=0.0, text=text, terms=terms_of(text), times=[0.0])
        for i in range(3000)
    )
    operator = api(make_user("operator"))
    with CaptureQueriesContext(connection) as queries:
        response = operator.get("/api/recordings/search", {"q": "everywhere"})
    assert response.status_code == 200 and response.json()["hits"] == []
    assert len(queries) <= 10, f"{len(queries)} queries for one search seeing no recording"


def test_a_capped_token_does_not_read_trails_shared_with_the_users_real_role(world):
    """A trail shared with a role is for its members; a token capped at another role acts as
    that role, even one granting the same permissions."""
    from accounts.roles import BUILTIN_ROLES

    make_role("sharedrole", set(BUILTIN_ROLES["operator"]))
    member = make_user("sharedrole")
    TrailAccessRole.objects.create(session_id=world["theirs"].session_id, role_id="sharedrole")
    assert api(member).get(f"/api/recordings/{world['theirs'].name}").status_code == 200
    capped = api(member, cap=Role.objects.get(pk="operator"))
    assert api(make_user("operator")).get(f"/api/recordings/{world['theirs'].name}").status_code == 404
    assert capped.get(f"/api/recordings/{world['theirs'].name}").status_code == 404
