"""Host-key pins per route, against real OpenSSH servers reached through the web terminal.

``elsewhere`` is another machine: a network namespace where 127.0.0.1:<port> is an sshd other
than ours on the same address and port, behind a jump host of its own (tests/targets.py). A
poweruser's ad-hoc session through that jump host to "127.0.0.1:<port>" is the attack.
"""

import subprocess

import pytest
from asgiref.sync import async_to_sync
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from sessions.services.sessions import create_session
from targets.models import HostKeySighting, KnownHost
from tests import targets
from tests.factories import make_user
from tests.sessions.helpers import Terminal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def here(target_password):
    """Our SSH target on 127.0.0.1, its own for each test: tests here change its host key."""
    server = targets.Sshd(target_password).start()
    yield server
    server.remove()


@pytest.fixture
def elsewhere(target_password, here):
    """Another machine whose 127.0.0.1 has an sshd on ``here``'s port, and a jump host into it."""
    machine = targets.Elsewhere(target_password, here.port).start()
    yield machine
    machine.remove()


def fingerprint_of(server):
    """The SHA-256 fingerprint of the server's host key, as OpenSSH prints it."""
    out = subprocess.run(["ssh-keygen", "-lf", f"{server.host_key}.pub"], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def new_key(server):
    server.new_host_key()
    server.restart()
    return fingerprint_of(server)


def connect(owner, server, **extra):
    """Open an SSH session through the web terminal, leave it if it starts; return the row."""
    fields = {"host": "127.0.0.1", "port": server.port, "username": server.user, "password": server.password}
    session, _ = create_session(actor=owner, session_type="ssh", **{**fields, **extra})

    async def scenario():
        terminal = await Terminal.open(session.pk, owner)
        await terminal.until(lambda t: any(e.get("type") == "ended" or e.get("state") == "active" for e in t.events))
        if any(e.get("state") == "active" for e in terminal.events):
            await terminal.type("exit\n")
        await terminal.until_event("ended")

    async_to_sync(scenario)()
    session.refresh_from_db()
    return session


def through(jump):
    return {"jump_hosts": [{"host": jump.host, "port": jump.port, "username": jump.user, "password": jump.password}]}


def direct_pin(server):
    return KnownHost.objects.get(address="127.0.0.1", port=server.port, path="")


def test_first_use_pins_the_key_and_a_changed_key_is_refused(here):
    owner = make_user("poweruser")
    assert connect(owner, here).status == "ended"
    pin = direct_pin(here)
    assert pin.fingerprint == fingerprint_of(here) and pin.first_seen_by == owner and pin.host == "127.0.0.1"
    changed = new_key(here)
    refused = connect(owner, here)
    assert refused.status == "failed" and "host key" in refused.status_message
    pin.refresh_from_db()
    assert pin.fingerprint != changed
    assert [(s.fingerprint, s.seen_by) for s in pin.sightings.all()] == [(changed, owner)]


def test_poweruser_jump_host_cannot_pin_the_direct_route(here, elsewhere):
    """The attacker comes first: what their jump host shows them must not become everyone's pin."""
    attacker, victim = make_user("poweruser"), make_user("poweruser")
    assert connect(attacker, here, **through(elsewhere.jump)).status == "ended"
    assert not KnownHost.objects.filter(path="").exclude(port=elsewhere.jump.port).exists()
    theirs = KnownHost.objects.get(address="127.0.0.1", port=here.port)
    assert theirs.fingerprint == fingerprint_of(elsewhere.target)
    assert theirs.path == f"{elsewhere.jump.user}@127.0.0.1:{elsewhere.jump.port}"

    session = connect(victim, here)
    assert session.status == "ended", session.status_message  # the real server, pinned afresh
    assert direct_pin(here).fingerprint == fingerprint_of(here)
    assert not HostKeySighting.objects.exists()


def test_poweruser_jump_host_cannot_replace_a_key_waiting_for_an_admin(here, elsewhere):
    """A pinned route with a differing key waiting: the attacker's key joins neither."""
    admin, victim, attacker = make_user("admin"), make_user("poweruser"), make_user("poweruser")
    assert connect(admin, here).status == "ended"
    pinned = direct_pin(here).fingerprint
    legitimate = new_key(here)  # the server was really reinstalled
    assert connect(victim, here).status == "failed"

    assert connect(attacker, here, **through(elsewhere.jump)).status == "ended"  # their own route
    assert connect(attacker, here, **through(elsewhere.jump)).status == "ended"

    pin = direct_pin(here)
    assert pin.fingerprint == pinned
    assert [(s.fingerprint, s.seen_by) for s in pin.sightings.all()] == [(legitimate, victim)]
    assert not HostKeySighting.objects.filter(fingerprint=fingerprint_of(elsewhere.target)).exists()


def admin_browser(user):
    client = Client()
    client.force_login(user)
    return client


def test_differing_keys_seen_by_two_users_are_kept_and_an_admin_accepts_the_chosen_one(here):
    admin, first, second = make_user("admin"), make_user("poweruser"), make_user("poweruser")
    assert connect(admin, here).status == "ended"
    pinned = direct_pin(here).fingerprint
    key_two = new_key(here)
    assert connect(first, here).status == "failed"
    key_three = new_key(here)
    assert connect(second, here).status == "failed"
    assert connect(second, here).status == "failed"

    pin = direct_pin(here)
    seen = {s.fingerprint: s for s in pin.sightings.all()}
    assert set(seen) == {key_two, key_three} and pin.fingerprint == pinned
    assert (seen[key_two].seen_by, seen[key_two].times) == (first, 1)
    assert (seen[key_three].seen_by, seen[key_three].times) == (second, 2)
    assert seen[key_two].first_seen <= seen[key_three].first_seen <= seen[key_three].last_seen

    browser = admin_browser(admin)
    changelist = reverse("admin:targets_hostkeysighting_changelist")
    page = browser.get(changelist, {"known_host": pin.pk}).content.decode()
    for shown in (key_two, key_three, str(first), str(second), pinned):
        assert shown in page
    route_page = browser.get(reverse("admin:targets_knownhost_change", args=[quote(pin.pk)])).content.decode()
    assert key_two in route_page and key_three in route_page

    both = [seen[key_two].pk, seen[key_three].pk]
    browser.post(changelist, {"action": "accept", "_selected_action": both})
    assert direct_pin(here).fingerprint == pinned  # two keys for one route: nothing accepted

    browser.post(changelist, {"action": "accept", "_selected_action": [seen[key_three].pk]})
    pin.refresh_from_db()
    assert pin.fingerprint == key_three and pin.accepted_by == admin
    assert [s.fingerprint for s in pin.sightings.all()] == [key_two]  # the other one stays listed
    event = AuditEvent.objects.get(action="host_key.accepted")
    assert key_three in event.details and second.email in event.details and event.user == admin
    assert connect(first, here).status == "ended"
