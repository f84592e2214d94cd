"""POST /api/connections/health-check and the periodic check, against real loopback sockets."""

import pytest

from connections.choices import HealthStatus
from connections.models import Connection
from connections.services.health import check_all_connections
from connections.tasks import check_connection_health
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.django_db

URL = "/api/connections/health-check"


def check(client, *checks):
    response = client.post(URL, {"checks": list(checks)}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_checks_by_id_report_and_record_status(client_as, listener, closed_port):
    client = client_as("operator")
    up = make_connection(make_user("poweruser"), "up", port=listener, shared=True)
    down = make_connection(client.user, "down", port=closed_port)
    results = check(client, {"id": up.pk}, {"id": down.pk})
    assert results[0]["id"] == up.pk and results[0]["reachable"] is True and isinstance(results[0]["latencyMs"], int)
    assert results[1]["reachable"] is False and results[1]["latencyMs"] is None and results[1]["error"]
    up.refresh_from_db()
    down.refresh_from_db()
    assert up.health_status == HealthStatus.REACHABLE and up.health_checked_at is not None and up.health_error == ""
    assert down.health_status == HealthStatus.UNREACHABLE and down.health_error == "Connection refused"
    body = client.get("/api/connections").json()
    health = {c["id"]: c["health"]["status"] for c in body["ungrouped"] + body["sharedConnections"]}
    assert health == {up.pk: "reachable", down.pk: "unreachable"}


def test_id_the_caller_cannot_see_is_reported_unknown(client_as, listener):
    hidden = make_connection(make_user("poweruser"), port=listener)
    results = check(client_as("poweruser"), {"id": hidden.pk}, {"id": "conn_missing"})
    assert [r["error"] for r in results] == ["Unknown connection.", "Unknown connection."]
    assert Connection.objects.get(pk=hidden.pk).health_status == HealthStatus.UNKNOWN


def test_host_and_port_need_create_permission(client_as, listener):
    body = {"checks": [{"host": "127.0.0.1", "port": listener}]}
    assert client_as("operator").post(URL, body, format="json").status_code == 403
    assert check(client_as("poweruser"), {"host": "127.0.0.1", "port": listener})[0]["reachable"] is True


@pytest.mark.parametrize("host", ["169.254.169.254", "0xa9fea9fe", "::ffff:169.254.169.254"])
def test_denied_targets_are_never_contacted(client_as, host):
    result = check(client_as("poweruser"), {"host": host, "port": 80})[0]
    assert result["reachable"] is False and "not an allowed target" in result["error"]


def test_denied_stored_connection_is_not_contacted(client_as, settings):
    client = client_as("poweruser")
    conn = make_connection(client.user, host="127.0.0.9")
    settings.TARGET_DENYLIST = ["127.0.0.9/32"]
    from targets.addresses import deny_rules

    deny_rules.cache_clear()
    assert "not an allowed target" in check(client, {"id": conn.pk})[0]["error"]


def test_many_checks_run_concurrently_with_a_timeout(client_as, listener, closed_port, settings):
    settings.HEALTH_CHECK_TIMEOUT = 0.5
    checks = [{"host": "127.0.0.1", "port": listener}, {"host": "127.0.0.1", "port": closed_port}] * 100
    # 192.0.2.1 (TEST-NET-1) is never answered here, so it exercises the per-check deadline.
    checks.append({"host": "192.0.2.1", "port": 9})
    results = check(client_as("poweruser"), *checks)
    assert [r["reachable"] for r in results[:-1]] == [True, False] * 100
    assert results[-1]["reachable"] is False


@pytest.mark.parametrize(
    "body",
    [
        {"checks": []},
        {"checks": "all"},
        {"checks": [{}]},
        {"checks": [{"host": "127.0.0.1"}]},
        {"checks": [{"host": "127.0.0.1", "port": 0}]},
        {"checks": [{"host": "127.0.0.1", "port": "80"}]},
        {"checks": [{"id": 5}]},
        # An address beside an id still needs both parts (this answered 500: KeyError 'port').
        {"checks": [{"id": "conn_x", "host": "127.0.0.1"}]},
        {"checks": [{"id": "conn_x", "port": 22}]},
        {},
    ],
)
def test_bad_health_check_input_is_400(client_as, body):
    response = client_as("poweruser").post(URL, body, format="json")
    assert response.status_code == 400 and response.json()["error"]


def test_too_many_checks_is_400(client_as, settings):
    settings.HEALTH_CHECK_MAX_TARGETS = 3
    body = {"checks": [{"host": "127.0.0.1", "port": 1}] * 4}
    assert client_as("poweruser").post(URL, body, format="json").status_code == 400


def test_periodic_task_checks_every_connection(listener, closed_port):
    owner = make_user("poweruser")
    up = make_connection(owner, "up", port=listener)
    down = make_connection(owner, "down", port=closed_port)
    web = make_connection(owner, "web", protocol="web", host="", url=f"http://127.0.0.1:{listener}/")
    assert check_connection_health() == 3
    statuses = dict(Connection.objects.values_list("name", "health_status"))
    assert statuses == {"up": "reachable", "down": "unreachable", "web": "reachable"}
    assert Connection.objects.get(pk=web.pk).health_latency_ms is not None
    assert check_all_connections() == 3  # safe to run again
    assert up.pk and down.pk


def test_beat_schedule_runs_the_health_task(settings):
    from pam.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["check-connection-health"]
    assert entry["task"] in app.tasks and entry["schedule"] == settings.HEALTH_CHECK_INTERVAL
