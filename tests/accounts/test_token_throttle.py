"""Guessing API keys and personal tokens is throttled per client address and summarised in the audit log."""

import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db.models import Sum
from rest_framework.test import APIClient

from accounts.choices import AuditAction
from accounts.models import AuditEvent
from pam.asgi import application
from sessions.consumers import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from tests.factories import make_api_key, make_user, make_user_token

pytestmark = pytest.mark.django_db

LIMIT = 20  # PAM_TOKEN_FAILURE_RATE's default: 20/min


def get_me(token, address):
    return APIClient().get("/api/me", HTTP_X_API_KEY=token, REMOTE_ADDR=address)


def test_300_bad_api_keys_are_throttled_and_summarised():
    statuses = [get_me(f"guess{n}:not-the-secret", "127.0.0.41").status_code for n in range(300)]
    assert statuses == [401] * LIMIT + [429] * (300 - LIMIT)
    assert AuditEvent.objects.count() < 30
    failed = AuditEvent.objects.filter(action=AuditAction.API_KEY_USE_FAILED, ip_addr="127.0.0.41")
    assert failed.aggregate(total=Sum("repeats"))["total"] == LIMIT
    throttled = AuditEvent.objects.get(action=AuditAction.TOKEN_THROTTLED)
    assert (throttled.ip_addr, throttled.repeats) == ("127.0.0.41", 300 - LIMIT)


def test_guessing_one_keys_secret_is_one_row_against_its_owner():
    owner = make_user("admin")
    make_api_key(owner, name="deploy")
    for n in range(LIMIT):
        get_me(f"deploy:guess-{n}", "127.0.0.42")
    row = AuditEvent.objects.get(action=AuditAction.API_KEY_USE_FAILED)
    assert (row.user_email, row.object_name, row.repeats) == (owner.email, "deploy", LIMIT)


def test_throttled_answer_is_a_429_with_retry_after_and_the_error_shape():
    for n in range(LIMIT):
        get_me(f"guess{n}:x", "127.0.0.43")
    response = get_me("guess:x", "127.0.0.43")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert set(response.json()) == {"error"} and "Too many refused tokens" in response.json()["error"]


def test_a_throttled_address_cannot_use_even_a_good_token_but_others_can():
    _, good = make_api_key(make_user("operator"))
    for n in range(LIMIT):
        get_me(f"guess{n}:x", "127.0.0.44")
    assert get_me(good, "127.0.0.44").status_code == 429
    assert get_me(good, "127.0.0.45").status_code == 200


def test_successful_token_use_is_never_throttled():
    _, token = make_user_token(make_user("operator"))
    client = APIClient(REMOTE_ADDR="127.0.0.46")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert {client.get("/api/me").status_code for _ in range(3 * LIMIT)} == {200}


def test_the_throttle_lifts_when_the_window_passes(settings):
    settings.TOKEN_FAILURE_RATE = "3/s"
    _, good = make_api_key(make_user("operator"))
    for n in range(3):
        get_me(f"guess{n}:x", "127.0.0.47")
    refused = get_me(good, "127.0.0.47")
    assert refused.status_code == 429
    time.sleep(int(refused["Retry-After"]) + 0.2)  # time itself is under test; nothing to poll
    assert get_me(good, "127.0.0.47").status_code == 200


def _ws_close_code(token, address):
    async def connect():
        communicator = WebsocketCommunicator(
            application,
            f"/ws/sessions/{uuid.uuid4()}/terminal",
            headers=[(b"authorization", f"Bearer {token}".encode()), (b"origin", b"http://127.0.0.1")],
        )
        communicator.scope["client"] = (address, 40000)
        connected, code = await communicator.connect(timeout=10)
        await communicator.disconnect()
        return None if connected else code

    return async_to_sync(connect)()


@pytest.mark.django_db(transaction=True)
def test_websocket_token_guessing_is_throttled_too():
    _, good = make_user_token(make_user("operator"))
    for n in range(LIMIT):
        assert _ws_close_code(f"pamu_guess{n}", "127.0.0.48") == CLOSE_UNAUTHENTICATED
    # Over the limit the token is not even looked at: a good one is refused like a bad one...
    assert _ws_close_code(good, "127.0.0.48") == CLOSE_UNAUTHENTICATED
    # ...while from another address it signs in (and finds no such session).
    assert _ws_close_code(good, "127.0.0.49") == CLOSE_FORBIDDEN
    assert AuditEvent.objects.filter(action=AuditAction.TOKEN_THROTTLED, ip_addr="127.0.0.48").exists()
    assert AuditEvent.objects.get(action=AuditAction.TOKEN_USE_FAILED).repeats == LIMIT
