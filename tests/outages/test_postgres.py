"""A running installation through PostgreSQL outages, against real servers (tests/outages/).

Why: one PostgreSQL serves every node of an installation (CONTRACT.md) and may go away for a
while. Meanwhile a session's end is told at once, nothing is lost from the trail once the
database is back, and requests answer 503 with a JSON error (pages a page of their own), never
a 500.
"""

import asyncio
import time

from asgiref.sync import async_to_sync

from tests.factories import PASSWORD
from tests.faults import established
from tests.outages.probes import (
    LIVE,
    SETTLE,
    Browser,
    Findings,
    attached_owner,
    brief,
    close_codes,
    ended_events,
    http,
    poll,
    settle,
)


def test_a_session_ending_while_postgresql_is_down_is_told_at_once_and_written_later(pam, node, sshd):
    """The owner types ``exit`` while PostgreSQL is down: the terminal gets ``ended`` promptly
    anyway. Once PostgreSQL is back the trail catches up within seconds: the row ended with
    ended_at, a ``session.ended`` audit event, the recording's ended_at."""
    owner = pam.people["poweruser"]
    findings = Findings()

    async def scenario():
        session_id, terminal = await attached_owner(pam, node, sshd, owner)
        await asyncio.sleep(1.2)  # a recording flush
        pam.postgres.stop()
        down = time.monotonic()
        await terminal.type("exit\n")
        await settle(terminal, lambda t: bool(ended_events(t)), 5)
        findings.seen["terminal_while_postgres_down"] = {
            "ended_after_s": round(time.monotonic() - down, 1) if ended_events(terminal) else None,
            "ended": ended_events(terminal), "close_codes": close_codes(terminal)}
        findings.check(ended_events(terminal),
                       "the terminal was not told the session ended while PostgreSQL was down")
        findings.seen["ssh_connections_while_postgres_down"] = len(established(sshd.port, node.pid))
        await asyncio.sleep(max(0.0, 11 - (time.monotonic() - down)))  # an outage of ~11 s
        pam.postgres.start()
        if not ended_events(terminal) and not terminal.closed:
            await settle(terminal, lambda t: bool(ended_events(t)), SETTLE)
            findings.seen["told_after_postgres_back"] = bool(ended_events(terminal))
        if not terminal.closed:
            await terminal.close()
        return session_id

    try:
        session_id = async_to_sync(scenario)()
    finally:
        if not pam.postgres.running:
            pam.postgres.start()

    def trail():
        return {
            "row": pam.session_row(session_id),
            "audit_session_ended": pam.query(
                "SELECT count(*) FROM accounts_auditevent "
                "WHERE action = 'session.ended' AND object_name = %s",
                str(session_id))[0][0],
            "recording_ended_at": [r[0] for r in pam.query(
                "SELECT ended_at FROM recordings_recording WHERE session_id = %s", str(session_id))],
        }

    def complete():
        now = trail()
        return (now["row"]["status"] not in LIVE and now["row"]["ended_at"] is not None
                and now["audit_session_ended"] >= 1 and now["recording_ended_at"]
                and now["recording_ended_at"][0] is not None)

    written = poll(complete, SETTLE + 3)
    findings.seen["trail_after_postgres_back"] = trail()
    findings.check(written, f"{SETTLE + 3} s after PostgreSQL was back the trail is incomplete")
    findings.check(not established(sshd.port, node.pid), "the SSH connection is still open")
    findings.verdict(node)


def test_requests_while_postgresql_is_down_answer_503_never_500(pam, node):
    """PostgreSQL down: GET /api/sessions (a valid token, an unknown user token, an unknown API
    key) answers 503 with a JSON ``error``; the login page answers 503 to a browser that is
    signed in (its session lives in the database) and to a sign-in attempt, and never 500 to
    anyone (a browser without a session may still get the form: rendering it needs no database).
    Back up, everything answers as usual."""
    owner = pam.people["poweruser"]
    findings = Findings()
    signed_in, fresh = Browser(node.base), Browser(node.base)
    signed_in.request("GET", "/login")
    status, _ = signed_in.request("POST", "/login", {"username": owner["username"], "password": PASSWORD})
    assert status == 302 and signed_in.has_session(), f"signing in before the outage answered {status}"
    fresh.request("GET", "/login")  # its CSRF cookie and token, for a sign-in during the outage

    api_probes = {
        "GET /api/sessions, valid token": dict(method="GET", path="/api/sessions", token=owner["token"]),
        "GET /api/sessions, unknown user token": dict(method="GET", path="/api/sessions",
                                                      token="pamu_" + "x" * 40),
        "GET /api/sessions, unknown API key": dict(method="GET", path="/api/sessions",
                                                   headers={"X-API-Key": "nosuchkey:secret"}),
    }
    sign_in = {"username": owner["username"], "password": PASSWORD}

    def probe():
        answers = {name: http(node.base, **probe) for name, probe in api_probes.items()}
        answers["GET /login, signed-in browser"] = signed_in.request("GET", "/login")
        answers["GET /login, no session"] = Browser(node.base).request("GET", "/login")
        answers["POST /login (sign in)"] = fresh.request("POST", "/login", sign_in)
        return answers

    pam.postgres.stop()
    try:
        seen = probe()
    finally:
        pam.postgres.start()
    findings.seen["while_down"] = {name: (status, brief(body)) for name, (status, body) in seen.items()}
    for name, (status, body) in seen.items():
        if name == "GET /login, no session":
            findings.check(status in (200, 503), f"{name} answered {status} while PostgreSQL was down")
            continue
        findings.check(status == 503, f"{name} answered {status} while PostgreSQL was down")
        if name.startswith("GET /api"):
            findings.check(isinstance(body, dict) and body.get("error"), f"{name}: no JSON error: {body!r}")

    # Back up: the valid token first (polled: it costs no refusal), then everything once, so
    # the refused tokens stay far below the failed-token rate limit.
    recovered = poll(lambda: http(node.base, **api_probes["GET /api/sessions, valid token"])[0] == 200, 10)
    again = {name: http(node.base, **probe)[0] for name, probe in api_probes.items()}
    again["GET /login, signed-in browser"] = signed_in.request("GET", "/login")[0]
    again["GET /login, no session"] = Browser(node.base).request("GET", "/login")[0]
    newcomer = Browser(node.base)
    newcomer.request("GET", "/login")
    again["POST /login (sign in)"] = newcomer.request("POST", "/login", sign_in)[0]
    normal = {name: 200 for name in api_probes}
    normal.update({"GET /api/sessions, unknown user token": 401, "GET /api/sessions, unknown API key": 401,
                   "GET /login, signed-in browser": 302, "GET /login, no session": 200,
                   "POST /login (sign in)": 302})
    findings.check(recovered and again == normal, f"once PostgreSQL was back: {again} (want {normal})")
    findings.verdict(node)
