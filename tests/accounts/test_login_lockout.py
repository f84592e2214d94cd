"""Password guessing at every login door is locked out per account and per client address."""

import time
from datetime import timedelta
from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.test import Client

from accounts.choices import AuditAction
from accounts.models import AuditEvent
from tests.factories import PASSWORD, make_user
from tests.processes import daphne

pytestmark = pytest.mark.django_db

DOORS = ["/login", "/admin/login/"]


def attempt(client, username, password, door="/login", **extra):
    return client.post(door, {"username": username, "password": password}, **extra)


def signed_in(client):
    return client.get("/api/me").status_code == 200


@pytest.mark.parametrize("door", DOORS)
def test_sixty_wrong_passwords_then_the_right_one_is_refused(door):
    user = make_user("admin")
    client = Client(REMOTE_ADDR="127.0.0.21")
    for n in range(60):
        attempt(client, user.username, f"guess-{n}", door)
    response = attempt(client, user.username, PASSWORD, door)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "Too many failed sign-ins" in response.content.decode()
    assert not signed_in(client)
    assert not AuditEvent.objects.filter(action=AuditAction.USER_LOGIN, user=user).exists()


def test_the_attack_is_one_audit_row_that_counts_every_attempt():
    user = make_user("operator")
    client = Client(REMOTE_ADDR="127.0.0.22")
    for n in range(60):
        attempt(client, user.username, f"guess-{n}")
    attempt(client, user.username, PASSWORD)
    failed = AuditEvent.objects.get(action=AuditAction.USER_LOGIN_FAILED)
    assert (failed.object_name, failed.ip_addr, failed.repeats) == (user.username, "127.0.0.22", 61)
    assert "61 times" in failed.summary
    locked = AuditEvent.objects.get(action=AuditAction.USER_LOCKED_OUT)
    assert locked.object_name == user.username and locked.repeats > 1


def test_a_lockout_on_one_door_holds_at_the_other():
    user = make_user("admin")
    client = Client(REMOTE_ADDR="127.0.0.23")
    for n in range(5):
        attempt(client, user.username, f"guess-{n}", "/login")
    assert attempt(client, user.username, PASSWORD, "/admin/login/").status_code == 429


def test_lockout_expires(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_LOCKOUT = timedelta(seconds=2)
    user = make_user("operator")
    client = Client(REMOTE_ADDR="127.0.0.24")
    for n in range(3):
        attempt(client, user.username, f"guess-{n}")
    refused = attempt(client, user.username, PASSWORD)
    assert refused.status_code == 429
    time.sleep(int(refused["Retry-After"]) + 0.5)  # time itself is under test; nothing to poll
    assert attempt(client, user.username, PASSWORD).status_code == 302
    assert signed_in(client)


def test_lockout_grows_with_every_further_round_of_failures(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_LOCKOUT = timedelta(minutes=1)
    user = make_user("operator")
    client = Client(REMOTE_ADDR="127.0.0.25")
    waits = []
    for n in range(1, 10):
        response = attempt(client, user.username, f"guess-{n}")
        if n % 3 == 0:
            waits.append(int(response["Retry-After"]))
    assert waits == [60, 120, 240]


def test_one_address_guessing_many_accounts_is_locked_out():
    victims = [make_user("operator") for _ in range(5)]
    attacker = Client(REMOTE_ADDR="127.0.0.26")
    for victim in victims:  # one guess each: no account reaches the limit
        attempt(attacker, victim.username, "Summer2026!")
    other = make_user("operator")
    assert attempt(attacker, other.username, PASSWORD).status_code == 429
    # The accounts themselves are not locked: their owners sign in from elsewhere.
    assert attempt(Client(REMOTE_ADDR="127.0.0.27"), victims[0].username, PASSWORD).status_code == 302


def test_a_locked_account_is_refused_from_every_address():
    user = make_user("operator")
    for n in range(5):
        attempt(Client(REMOTE_ADDR=f"127.0.1.{n + 1}"), user.username, f"guess-{n}")
    assert attempt(Client(REMOTE_ADDR="127.0.1.99"), user.username, PASSWORD).status_code == 429


def test_forged_forwarded_for_does_not_escape_the_address_lockout(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    attacker = Client(REMOTE_ADDR="127.0.0.28")
    for n in range(5):
        attempt(attacker, make_user("viewer").username, "x", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    response = attempt(attacker, make_user("viewer").username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert response.status_code == 429
    # Behind the trusted proxy, each forwarded client is counted on its own.
    proxy = Client(REMOTE_ADDR="127.0.0.1")
    for n in range(5):
        attempt(proxy, make_user("viewer").username, "x", HTTP_X_FORWARDED_FOR="198.51.100.7")
    response = attempt(proxy, make_user("viewer").username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert response.status_code == 302


def _browser_login(base, username, password):
    browser = requests.Session()
    browser.get(f"{base}/login", timeout=10)
    form = {"username": username, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    return browser.post(
        f"{base}/login",
        data=form,
        headers={"Referer": f"{base}/login"},
        allow_redirects=False,
        timeout=10,
    )


@pytest.mark.django_db(transaction=True)
def test_web_nodes_share_the_failure_counts():
    user = make_user("operator")
    with daphne() as first, daphne() as second:
        for n in range(4):  # two failures on each node: neither alone is near the limit of 5
            assert _browser_login((first, second)[n % 2], user.username, f"guess-{n}").status_code == 200
        assert _browser_login(second, user.username, "guess-5").status_code == 429  # the fifth
        assert _browser_login(first, user.username, PASSWORD).status_code == 429


def test_an_admin_lifts_a_lockout_from_the_command_line():
    user = make_user("admin")
    for n in range(5):
        attempt(Client(REMOTE_ADDR=f"127.0.2.{n + 1}"), user.username, f"guess-{n}")
    assert attempt(Client(REMOTE_ADDR="127.0.2.99"), user.username, PASSWORD).status_code == 429
    call_command("axes_reset_username", user.username, stdout=StringIO())
    assert attempt(Client(REMOTE_ADDR="127.0.2.99"), user.username, PASSWORD).status_code == 302
