"""A running installation through Redis and PostgreSQL outages, against real servers.

Why: one PostgreSQL and one Redis serve every node of an installation (CONTRACT.md), and
either may go away for a while: a restart, a failover, a network blip. What must hold meanwhile
is what a user and an auditor rely on: a terminal is never dropped with an unexplained error,
an admin's "end this session" is never a 500 and does end it, a session whose owner left does
not keep its target connection open, nothing is lost from the trail once the database is back,
and the logs stay readable.

The servers are private (tests.faults): PostgreSQL and Redis of this module's own, on free
loopback ports, stopped and started by the tests. One daphne node per test, one OpenSSH target.
"""

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack

import pytest
from asgiref.sync import async_to_sync

from tests.factories import PASSWORD
from tests.faults import Installation, PrivatePostgres, PrivateRedis, established, wait_until
from tests.sessions.helpers import NetTerminal

GRACE = 5  # PAM_SESSION_RECONNECT_GRACE of the installation
SETTLE = 5  # seconds allowed past a deadline (a grace period, a server's return) for the end to land
LIVE = ("pending", "connecting", "active")


# --- servers and the installation ---------------------------------------------------------------

@pytest.fixture(scope="module")
def servers():
    with ExitStack() as stack:
        postgres = PrivatePostgres()
        stack.callback(postgres.remove)
        redis = PrivateRedis()
        stack.callback(redis.remove)
        postgres.start()
        redis.start()
        yield postgres, redis


@pytest.fixture(scope="module")
def installation(servers, tmp_path_factory):
    postgres, redis = servers
    pam = Installation(postgres, redis, tmp_path_factory.mktemp("pam-faults"),
                       PAM_SESSION_RECONNECT_GRACE=GRACE)
    pam.people = pam.users("poweruser", "admin")
    return pam


@pytest.fixture
def pam(installation):
    """The installation with both servers up, before the test and after it (failed or not)."""
    for server in (installation.postgres, installation.redis):
        if not server.running:
            server.start()
    yield installation
    for server in (installation.postgres, installation.redis):
        if not server.running:
            server.start()


@pytest.fixture
def node(pam, tmp_path):
    with pam.daphne(tmp_path / "daphne.log") as process:
        yield process


# --- helpers ------------------------------------------------------------------------------------

def http(base, method, path, token=None, body=None, headers=None):
    """``(status, parsed JSON or text)``; an error status is an answer, not an exception."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base + path, method=method, headers=all_headers,
        data=json.dumps(body).encode() if body is not None else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    if "json" in kind:
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            pass
    return status, raw.decode(errors="replace")


def open_session(node, token, sshd):
    target = {"session_type": "ssh", "hostname": sshd.host, "port": sshd.port,
              "username": sshd.user, "password": sshd.password}
    status, body = http(node.base, "POST", "/api/sessions", token, target)
    assert status == 201, (status, body)
    return body["session_id"]


def log_of(node, since=0):
    return node.log.read_text(errors="replace")[since:]


def log_size(node):
    return len(node.log.read_text(errors="replace"))


def brief(body):
    """A response body, short enough for a failure message."""
    if isinstance(body, str):
        return body[:40].strip()
    if isinstance(body, list):
        return f"[{len(body)} items]"
    return body


def tracebacks(text):
    return text.count("Traceback (most recent call last)")


def close_codes(terminal):
    return [e.get("code") for e in terminal.events if e.get("type") == "closed"]


def ended_events(terminal):
    return [e for e in terminal.events if e.get("type") == "ended"]


def clean_close(terminal):
    """The server closed the socket, said why first, and closed with 1000 or 4xxx (never 1011)."""
    codes = close_codes(terminal)
    clean_code = bool(codes) and (codes[-1] == 1000 or 4000 <= (codes[-1] or 0) <= 4999)
    return clean_code and bool(ended_events(terminal))


async def settle(terminal, predicate, timeout):
    """Read the terminal until ``predicate`` holds, it closes, or ``timeout``; never raise."""
    try:
        await terminal.until(lambda t: predicate(t) or t.closed, timeout)
    except AssertionError:
        pass


class Findings:
    """What a test checks, each check recorded instead of stopping at the first: a fault test
    fails with everything that went wrong during the outage, and what was seen."""

    def __init__(self):
        self.failed = []
        self.seen = {}

    def check(self, ok, message):
        if not ok:
            self.failed.append(message() if callable(message) else message)
        return bool(ok)

    def verdict(self, node=None):
        if self.failed:
            lines = [f"- {failure}" for failure in self.failed]
            lines.append(f"observed: {self.seen}")
            if node is not None:
                lines.append("daphne log, error lines: " + "; ".join(error_lines(log_of(node))[-8:]))
            raise AssertionError("\n".join(lines))


def error_lines(text):
    """The distinct ERROR/WARNING lines of a log, and the last line of each traceback."""
    found = re.findall(r"(?m)^\S+ \S+ (?:ERROR|WARNING|CRITICAL) (.{0,160})", text)
    found += re.findall(r"(?m)^(\w+(?:\.\w+)*(?:Error|Exception)\b.{0,160})$", text)
    return list(dict.fromkeys(found))


def poll(predicate, timeout, interval=0.2):
    """Whether ``predicate`` came true within ``timeout`` (a probe raising counts as false)."""
    try:
        wait_until(predicate, timeout, interval)
        return True
    except AssertionError:
        return False


def gone(pam, node, sshd, session_id):
    """The session's row is over (ended_at set) and the node holds no connection to its target."""
    row = pam.session_row(session_id)
    return row["status"] not in LIVE and row["ended_at"] is not None and not established(sshd.port, node.pid)


def state(pam, node, sshd, session_id):
    return {"row": pam.session_row(session_id), "ssh_connections": len(established(sshd.port, node.pid))}


# --- Redis ----------------------------------------------------------------------------------------

async def attached_owner(pam, node, sshd, owner):
    """A new session with its owner's terminal attached and echoing: ``(session id, terminal)``."""
    session_id = await asyncio.to_thread(open_session, node, owner["token"], sshd)
    terminal = await NetTerminal.open(node.base, session_id, owner["token"])
    await terminal.until_event("status", state="active")
    await terminal.type("echo before-$((6*7))\n")
    await terminal.until_output("before-42")
    return session_id, terminal


async def try_typing(terminal, text):
    if not terminal.closed:
        try:
            await terminal.type(text)
        except Exception:  # noqa: BLE001 - the socket closed under us: judged by the caller
            pass


def test_redis_outage_under_an_attached_owner_neither_drops_the_terminal_nor_leaks(pam, node, sshd):
    """Redis goes while the owner types. The terminal keeps working (it is a local session), or
    is told why and closed cleanly, never dropped with 1011. Once the owner leaves, the grace
    period ends the session and hangs up on the target, while Redis is still down, and nothing
    comes back to life once Redis is back."""
    owner = pam.people["poweruser"]
    findings = Findings()

    async def scenario():
        session_id, terminal = await attached_owner(pam, node, sshd, owner)
        findings.check(len(established(sshd.port, node.pid)) == 1, "no SSH connection before the outage")
        pam.redis.stop()
        await asyncio.sleep(1.5)  # whatever was waiting on Redis has noticed by now
        await try_typing(terminal, "echo during-$((7*7))\n")
        await settle(terminal, lambda t: b"during-49" in t.output, 6)
        findings.seen.update(close_codes=close_codes(terminal), ended=ended_events(terminal),
                             echoed_during_outage=b"during-49" in terminal.output)
        if terminal.closed:
            findings.check(clean_close(terminal), lambda: (
                f"the terminal was dropped during the Redis outage: close codes {close_codes(terminal)}, "
                f"ended events {ended_events(terminal)}"))
        else:
            findings.check(b"during-49" in terminal.output,
                           "the terminal stayed open but typing reached nothing during the Redis outage")
            await terminal.close()
        return session_id

    session_id = async_to_sync(scenario)()
    left = time.monotonic()
    ended = poll(lambda: gone(pam, node, sshd, session_id), GRACE + SETTLE)
    findings.seen["after_grace_redis_down"] = state(pam, node, sshd, session_id)
    findings.check(ended, lambda: (
        f"the owner left during the Redis outage, yet {GRACE}+{SETTLE} s later the session is not over: "
        f"{findings.seen['after_grace_redis_down']}"))
    findings.check(not pam.redis.running, "Redis came back too early")
    pam.redis.start()
    time.sleep(max(1.0, GRACE + 1 - (time.monotonic() - left)))
    ended = poll(lambda: gone(pam, node, sshd, session_id), SETTLE)
    findings.seen["after_redis_back"] = state(pam, node, sshd, session_id)
    findings.check(ended, lambda: (
        f"after Redis came back the session is still not over: {findings.seen['after_redis_back']}"))
    findings.verdict(node)


def test_a_session_opened_while_redis_is_down_works_or_fails_clearly_and_leaves_nothing(pam, node, sshd):
    """Redis is down when the owner creates a session and attaches. Either works, or the answer
    says why (a 4xx/503 with a JSON error, an ``ended`` text frame and a clean close): never a
    500 nor a 1011. Once the client is gone nothing is live and no SSH connection is left; once
    Redis is back, sessions open as usual."""
    owner = pam.people["poweruser"]
    findings = Findings()
    began = pam.query("SELECT now()")[0][0]
    pam.redis.stop()
    target = {"session_type": "ssh", "hostname": sshd.host, "port": sshd.port,
              "username": sshd.user, "password": sshd.password}
    status, body = http(node.base, "POST", "/api/sessions", owner["token"], target)
    findings.seen["post"] = (status, body)
    findings.check(status < 500 or status == 503,
                   f"POST /api/sessions during the Redis outage answered {status}: {body!r}")
    if status != 201:
        findings.check(isinstance(body, dict) and body.get("error"),
                       f"a refusal without a JSON error: {body!r}")
    else:
        session_id = body["session_id"]

        async def scenario():
            try:
                terminal = await NetTerminal.open(node.base, session_id, owner["token"])
            except Exception as exc:  # noqa: BLE001 - a handshake refused: say how
                code = getattr(getattr(exc, "response", None), "status_code", None)
                findings.seen["handshake"] = repr(exc)
                findings.check(code is not None and (code < 500 or code == 503),
                               f"the websocket handshake failed: {exc!r}")
                return
            await settle(terminal, lambda t: any(e.get("state") == "active" for e in t.events), 10)
            if not terminal.closed:
                await terminal.type("echo fresh-$((5*5))\n")
                await settle(terminal, lambda t: b"fresh-25" in t.output, 6)
            findings.seen.update(close_codes=close_codes(terminal), events=terminal.events[-3:])
            if terminal.closed:
                findings.check(clean_close(terminal), lambda: (
                    f"the new session's terminal was dropped: close codes {close_codes(terminal)}, "
                    f"ended events {ended_events(terminal)}"))
            else:
                findings.check(b"fresh-25" in terminal.output, "the new session's terminal is open but dead")
                await terminal.close()

        async_to_sync(scenario)()

    def created():
        return pam.query("SELECT id, status, node, ended_at FROM pam_sessions_session "
                         "WHERE owner_id = %s AND created_at >= %s", owner["id"], began)

    def nothing_left():
        # An unclaimed pending row is an invitation that holds nothing; it expires on its own.
        rows = created()
        settled = all(status not in LIVE or (status == "pending" and not node_id)
                      for _, status, node_id, _ in rows)
        return settled and not established(sshd.port, node.pid)

    findings.check(poll(nothing_left, GRACE + SETTLE), lambda: (
        f"{GRACE}+{SETTLE} s after the client left (Redis down): sessions {created()}, "
        f"SSH connections {len(established(sshd.port, node.pid))}"))
    pam.redis.start()

    async def afterwards():
        session_id, terminal = await attached_owner(pam, node, sshd, owner)
        await terminal.type("exit\n")
        await terminal.until_event("ended")

    try:
        async_to_sync(afterwards)()
    except Exception as exc:  # noqa: BLE001 - recorded with the rest
        findings.check(False, f"once Redis was back a new session did not work: {exc}")
    findings.check(poll(nothing_left, SETTLE), lambda: f"after Redis came back: sessions {created()}")
    findings.verdict(node)


def test_an_admin_ends_a_session_while_redis_is_down(pam, node, sshd):
    """DELETE /api/sessions/<id> during a Redis outage answers 2xx (or 503 with a JSON error),
    never 500, and the session really ends: its terminal is told, its row is terminated, its
    SSH connection closes, at the latest a few seconds after Redis is back. The owner's keys
    reach nothing afterwards.

    A 503 says "not done, try again": the admin then repeats the DELETE once Redis is back, as a
    client would, and that one must end it. A 2xx must end it without any repeat."""
    owner, admin = pam.people["poweruser"], pam.people["admin"]
    findings = Findings()

    async def scenario():
        session_id, terminal = await attached_owner(pam, node, sshd, owner)
        pam.redis.stop()
        await asyncio.sleep(1)
        status, body = await asyncio.to_thread(http, node.base, "DELETE", f"/api/sessions/{session_id}",
                                               admin["token"])
        deleted = time.monotonic()
        findings.seen["delete"] = (status, body)
        findings.check(status != 500 and (200 <= status < 300 or (
            status == 503 and isinstance(body, dict) and body.get("error"))),
            f"DELETE during the Redis outage answered {status}: {body!r}")

        def over():
            return gone(pam, node, sshd, session_id) and (bool(ended_events(terminal)) or terminal.closed)

        await settle(terminal, lambda t: bool(ended_events(t)), SETTLE)
        done = await asyncio.to_thread(poll, over, 0.5)
        findings.seen["while_redis_down"] = {**state(pam, node, sshd, session_id),
                                             "ended": ended_events(terminal),
                                             "close_codes": close_codes(terminal)}
        if not done:
            await asyncio.sleep(max(0.0, 8 - (time.monotonic() - deleted)))  # an outage of ~9 s
            pam.redis.start()
            if status == 503:  # refused, not done: the admin tries again
                await asyncio.sleep(1)
                findings.seen["delete_again"] = await asyncio.to_thread(
                    http, node.base, "DELETE", f"/api/sessions/{session_id}", admin["token"])
            await settle(terminal, lambda t: bool(ended_events(t)), SETTLE)
            done = await asyncio.to_thread(poll, over, SETTLE)
            findings.seen["after_redis_back"] = {**state(pam, node, sshd, session_id),
                                                 "ended": ended_events(terminal),
                                                 "close_codes": close_codes(terminal)}
        findings.check(done, f"the session did not end, even {SETTLE} s after Redis was back")
        findings.check(ended_events(terminal) and ended_events(terminal)[-1].get("status") == "terminated",
                       lambda: f"the owner's terminal was not told it was terminated: close codes "
                               f"{close_codes(terminal)}, ended events {ended_events(terminal)}")
        await try_typing(terminal, "echo after-$((9*9))\n")
        await settle(terminal, lambda t: b"after-81" in t.output, 2)
        findings.check(b"after-81" not in terminal.output, "the owner's keys still reached the target")
        row = pam.session_row(session_id)
        findings.check(row["status"] == "terminated" and row["ended_at"] is not None, f"the row: {row}")

    try:
        async_to_sync(scenario)()
    finally:
        if not pam.redis.running:
            pam.redis.start()
    findings.verdict(node)


def test_a_redis_outage_does_not_flood_the_log_with_tracebacks(pam, node, sshd):
    """Ten seconds without Redis, a node holding a session with its owner attached: a few
    tracebacks at most (a summary line per outage is fine), not one per second."""
    owner = pam.people["poweruser"]

    async def scenario():
        session_id, terminal = await attached_owner(pam, node, sshd, owner)
        start = log_size(node)
        pam.redis.stop()
        await settle(terminal, lambda t: False, 10)
        during = log_of(node, start)
        pam.redis.start()
        if not terminal.closed:
            await terminal.close()
        return during

    during = async_to_sync(scenario)()
    count = tracebacks(during)
    assert count <= 3, (
        f"{count} tracebacks in {len(during)} characters of daphne log during a 10 s Redis outage; "
        f"distinct error lines: {error_lines(during)[:8]}"
    )


def test_after_a_redis_outage_the_node_hears_the_channel_layer_again(pam, node, sshd):
    """Redis goes for ~8 s and comes back (empty, as after a crash). The node holding a session
    must hear the channel layer again: an admin's DELETE afterwards reaches it, and it hangs up
    on the target within seconds."""
    owner, admin = pam.people["poweruser"], pam.people["admin"]
    findings = Findings()

    async def scenario():
        session_id, terminal = await attached_owner(pam, node, sshd, owner)
        pam.redis.stop()
        await settle(terminal, lambda t: False, 8)
        pam.redis.start()
        await asyncio.sleep(1)
        findings.seen["terminal_during_outage"] = {"close_codes": close_codes(terminal),
                                                   "ended": ended_events(terminal)}
        status, body = await asyncio.to_thread(http, node.base, "DELETE", f"/api/sessions/{session_id}",
                                               admin["token"])
        findings.seen["delete"] = (status, body)
        findings.check(status == 200, f"DELETE once Redis was back answered {status}: {body!r}")
        findings.check(await asyncio.to_thread(poll, lambda: gone(pam, node, sshd, session_id), SETTLE),
                       lambda: f"{SETTLE} s after the DELETE: {state(pam, node, sshd, session_id)}")
        if not terminal.closed:
            await settle(terminal, lambda t: bool(ended_events(t)), 2)
            await terminal.close()

    try:
        async_to_sync(scenario)()
    finally:
        if not pam.redis.running:
            pam.redis.start()
    findings.verdict(node)


# --- PostgreSQL -----------------------------------------------------------------------------------

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


class Browser:
    """A browser's cookies and CSRF token against one node, redirects not followed."""

    def __init__(self, base):
        import http.cookiejar

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect)
        self.csrf = None

    def request(self, method, path, form=None):
        data = None
        headers = {"Referer": self.base + path}
        if form is not None:
            data = urllib.parse.urlencode({"csrfmiddlewaretoken": self.csrf or "", **form}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.base + path, method=method, data=data, headers=headers)
        try:
            with self.opener.open(request, timeout=20) as response:
                status, body = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode(errors="replace")
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if found:
            self.csrf = found.group(1)
        return status, body

    def has_session(self):
        return any(cookie.name == "sessionid" for cookie in self.cookies)


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


# --- Celery beat ----------------------------------------------------------------------------------

def test_beat_on_a_fresh_data_dir_with_redis_sends_the_reaper(pam, tmp_path):
    """``celery -A pam worker -B`` (bin/pam-run), PAM_REDIS_URL set, a PAM_DATA_DIR never used
    before: the beat stays up, keeps its schedule file, and sends reap_lost_sessions when due
    (every 30 s); the worker runs it."""
    data_dir = tmp_path / "fresh-data"  # does not exist yet: the first start makes it
    with pam.celery(tmp_path / "celery.log", data_dir=data_dir) as worker:
        def log():
            return worker.log.read_text(errors="replace")

        def sent():
            text = log()
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}")
            beat_errors = re.findall(
                r"(?m)^\[[^]]+: (?:ERROR|CRITICAL|WARNING)/Beat\] (\w*(?:Error|Exception)\b.*)$", text)
            if beat_errors and "Sending due task" not in text:
                raise RuntimeError(f"the beat failed: {beat_errors[-1]}")
            return "Sending due task reap-lost-sessions (sessions.tasks.reap_lost_sessions)" in text

        deadline = time.monotonic() + 45
        failure = None
        while time.monotonic() < deadline:
            try:
                if sent():
                    break
            except RuntimeError as exc:
                failure = str(exc)
                break
            time.sleep(0.5)
        else:
            failure = "no 'Sending due task reap-lost-sessions' within 45 s"
        files = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*")) if data_dir.exists() else []
        assert failure is None, (
            f"{failure}; worker alive: {worker.poll() is None}; files in the data dir: {files}; "
            f"beat lines: {re.findall(r'(?m)^.*(?:/Beat|beat:).*$', log())[:3]}"
        )
        ran = r"Task sessions\.tasks\.reap_lost_sessions\[[^\]]+\] succeeded"
        assert poll(lambda: re.search(ran, log()), 10), (
            "the worker did not run the reaper: " + "; ".join(error_lines(log())[-5:]))
        assert worker.poll() is None
        assert list((data_dir / "celery").glob("beat-schedule*")), files
