"""Probes the outage tests share (tests/outages/): requests, terminals, logs, and what an outage
left behind, recorded as findings rather than stopped at the first.
"""

import asyncio
import json
import re
import urllib.error
import urllib.parse
import urllib.request

from tests.faults import established, wait_until
from tests.sessions.helpers import NetTerminal

GRACE = 5  # PAM_SESSION_RECONNECT_GRACE of the installation
SETTLE = 5  # seconds allowed past a deadline (a grace period, a server's return) for the end to land
LIVE = ("pending", "connecting", "active")


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
