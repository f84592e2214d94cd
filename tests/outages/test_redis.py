"""A running installation through Redis outages, against real servers (tests/outages/).

Why: one Redis serves every node of an installation (CONTRACT.md) and may go away for a while:
a restart, a failover, a network blip. What must hold meanwhile is what a user and an auditor
rely on: a terminal is never dropped with an unexplained error, an admin's "end this session" is
never a 500 and does end it, a session whose owner left does not keep its target connection
open, the logs stay readable, and Celery beat keeps sending the reaper.
"""

import asyncio
import re
import time

from asgiref.sync import async_to_sync

from tests.faults import established
from tests.outages.probes import (
    GRACE,
    LIVE,
    SETTLE,
    Findings,
    attached_owner,
    clean_close,
    close_codes,
    ended_events,
    error_lines,
    gone,
    http,
    log_of,
    log_size,
    poll,
    settle,
    state,
    tracebacks,
    try_typing,
)
from tests.sessions.helpers import NetTerminal


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
