"""Outages of PostgreSQL or Redis: 503s instead of 500s, and one log line instead of a flood.

The faults themselves, against real PostgreSQL and Redis processes, are in tests/outages/.
"""

import logging

import pytest
from django.db import OperationalError, ProgrammingError
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from pam import outages
from pam.outages import RepeatedFailure, SummariseOutages, is_outage
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_unreachable_services_are_outages_and_bugs_are_not():
    assert is_outage(OperationalError("connection refused"))
    assert is_outage(RedisConnectionError("Connection refused"))
    assert not is_outage(ProgrammingError("no such column"))
    assert not is_outage(ValueError("bug"))
    assert not is_outage(None)


def test_a_repeated_failure_is_logged_once_then_counted_then_its_recovery(caplog, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(outages.time, "monotonic", lambda: clock[0])
    failure = RepeatedFailure(logging.getLogger("pam.test"), "the thing")
    with caplog.at_level(logging.WARNING, logger="pam.test"):
        for _ in range(70):  # more than a minute of failures, once a second
            failure.failed(OperationalError("down"))
            clock[0] += 1
        failure.recovered()
    records = caplog.records
    assert [r.exc_info is not None for r in records] == [True, False, False]
    assert "still failing: 61 times in 60 s" in records[1].getMessage()
    assert "works again after 70 s (70 failures)" in records[2].getMessage()


def test_the_request_log_keeps_one_outage_a_minute(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(outages.time, "monotonic", lambda: clock[0] + 100)
    summary = SummariseOutages()

    def record(exc):
        return logging.LogRecord("django.request", logging.ERROR, "", 0, "Service Unavailable", (), (type(exc), exc, None))

    assert summary.filter(record(OperationalError("down")))
    assert not any(summary.filter(record(OperationalError("down"))) for _ in range(20))
    assert summary.filter(record(ValueError("a bug is always logged")))
    clock[0] += 61
    again = record(OperationalError("down"))
    assert summary.filter(again) and "20 more failures" in again.getMessage()


@pytest.fixture
def database_down(monkeypatch):
    """Every session lookup fails as it does when PostgreSQL is unreachable."""
    from sessions.models import SessionQuerySet

    def refuse(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 port 5432 failed: Connection refused")

    monkeypatch.setattr(SessionQuerySet, "visible_to", refuse)


def test_an_api_answers_503_with_a_json_error_while_the_database_is_down(database_down):
    client = Client(raise_request_exception=False)
    client.force_login(make_user("admin"))
    response = client.get("/api/sessions")
    assert response.status_code == 503
    assert "database or Redis" in response.json()["error"]


def test_a_bug_still_answers_500(monkeypatch):
    from sessions.models import SessionQuerySet

    monkeypatch.setattr(SessionQuerySet, "visible_to", lambda *a, **k: 1 / 0)
    client = Client(raise_request_exception=False)
    client.force_login(make_user("admin"))
    response = client.get("/api/sessions")
    assert response.status_code == 500 and response.json() == {"error": "Internal server error."}


def test_a_nul_character_anywhere_in_a_json_body_is_a_400():
    """PostgreSQL refuses NUL in any string, even to compare one: the fuzzer's 500 on
    POST /api/admin/group-mappings with ``"role": "\\u0000"``."""
    from rest_framework.test import APIClient

    admin = APIClient()
    admin.force_authenticate(make_user("admin"))
    for body in ({"oidc_group": "ops", "role": "\x00"}, {"oidc_group": "ops", "role": "admin", "x\x00": 1}):
        response = admin.post("/api/admin/group-mappings", body, format="json")
        error = response.json()
        assert response.status_code == 400 and "NUL" in error["error"] and len(error["fields"]) == 1
    assert admin.post("/api/admin/group-mappings", {"oidc_group": "ops", "role": "operator"}, format="json").status_code == 201
